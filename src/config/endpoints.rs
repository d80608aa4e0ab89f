//! The per-service endpoint overrides, `--aws-endpoint-url-<service>`: one flag per AWS
//! service zeroscale calls, built from [`SERVICES`] so that the table is the one list of
//! services (the flags, `doctor`'s endpoint lines and the clients all read it). clap's derive
//! wants one field per flag, so this implements clap's `Args` by hand.

use std::collections::BTreeMap;

use clap::{Arg, ArgMatches, Command};

/// The services zeroscale calls: display name, the flag of its own override
/// (`--aws-endpoint-url-<flag>`), its id in the variables, zeroscale's
/// (`ZEROSCALE_AWS_ENDPOINT_URL_<id>`) and the SDK's (`AWS_ENDPOINT_URL_<id>`), and what the
/// flag's help adds where the service's use is not obvious.
pub const SERVICES: [(&str, &str, &str, &str); 5] = [
    ("SageMaker", "sagemaker", "SAGEMAKER", ""),
    (
        "Application Auto Scaling",
        "application-auto-scaling",
        "APPLICATION_AUTO_SCALING",
        "",
    ),
    ("CloudWatch", "cloudwatch", "CLOUDWATCH", ""),
    ("Service Quotas", "service-quotas", "SERVICE_QUOTAS", ""),
    (
        "STS",
        "sts",
        "STS",
        " (GetCallerIdentity, at start-up and in `doctor`)",
    ),
];

/// The overrides given, by service flag (`sagemaker`, `sts`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOverrides(BTreeMap<&'static str, String>);

impl EndpointOverrides {
    /// The override of one service (`flag` as in [`SERVICES`]).
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.0.get(flag).map(String::as_str)
    }
}

/// clap's id of a service's flag.
fn arg_id(flag: &str) -> String {
    format!("aws-endpoint-url-{flag}")
}

impl clap::Args for EndpointOverrides {
    fn augment_args(cmd: Command) -> Command {
        SERVICES.iter().fold(cmd, |cmd, (name, flag, id, why)| {
            let help = format!("Endpoint override for {name} only{why}");
            cmd.arg(
                Arg::new(arg_id(flag))
                    .long(arg_id(flag))
                    .env(format!("ZEROSCALE_AWS_ENDPOINT_URL_{id}"))
                    .value_name("URL")
                    .help(help),
            )
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for EndpointOverrides {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut overrides = Self::default();
        overrides.update_from_arg_matches(matches)?;
        Ok(overrides)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for (_, flag, ..) in SERVICES {
            if let Some(url) = matches.get_one::<String>(&arg_id(flag)) {
                self.0.insert(flag, url.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        endpoints: EndpointOverrides,
    }

    #[test]
    fn every_service_has_its_flag_and_only_given_ones_are_set() {
        let cli = Cli::try_parse_from([
            "x",
            "--aws-endpoint-url-sagemaker",
            "http://sm",
            "--aws-endpoint-url-application-auto-scaling=http://aas",
        ])
        .unwrap();
        assert_eq!(cli.endpoints.get("sagemaker"), Some("http://sm"));
        assert_eq!(
            cli.endpoints.get("application-auto-scaling"),
            Some("http://aas")
        );
        assert_eq!(cli.endpoints.get("sts"), None);
        let help = Cli::try_parse_from(["x", "--help"])
            .unwrap_err()
            .to_string();
        for (_, flag, id, _) in SERVICES {
            assert!(
                help.contains(&format!("--aws-endpoint-url-{flag} <URL>")),
                "{help}"
            );
            assert!(
                help.contains(&format!("ZEROSCALE_AWS_ENDPOINT_URL_{id}")),
                "{help}"
            );
        }
        assert!(Cli::try_parse_from(["x", "--aws-endpoint-url-s3", "http://s3"]).is_err());
    }
}
