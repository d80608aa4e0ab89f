//! `/endpoints/{endpoint}/variants/{variant}`: the desired scale-to-zero state of async-inference
//! endpoint variants (seed 001), through the routes every kind of target shares (`kind_routes`).

super::kind_routes::kind_routes! {
    kind: EndpointVariant, path: VariantPath, spec: Variant(VariantSpec), status: VariantStatus,
    change: VariantChange, enable_ok: VariantEnableOk,
    base: "/endpoints/{endpoint}/variants/{variant}", list: "/endpoints", tag: "endpoints",
    noun: "variant", a: "an async endpoint variant", order: "by endpoint, then variant",
    enabling: "The job registers the variant with MinCapacity 0, puts target tracking on \
        `ApproximateBacklogSizePerInstance`, and puts the step policy and `HasBacklogWithoutCapacity` \
        alarm that bring it back from zero.",
}
