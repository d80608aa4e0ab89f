//! `/components`: the desired scale-to-zero state of SageMaker inference components (seed 000),
//! through the routes every kind of target shares (`kind_routes`).

super::kind_routes::kind_routes! {
    kind: Component, path: ComponentPath, spec: Component(ComponentSpec), status: ComponentStatus,
    change: ComponentChange, enable_ok: EnableOk,
    base: "/components/{name}", list: "/components", tag: "components",
    noun: "component", a: "an inference component", order: "by name",
    enabling: "The job registers the component with MinCapacity 0, puts target tracking, and puts \
        the step policy and `NoCapacityInvocationFailures` alarm that bring it back from zero.",
}
