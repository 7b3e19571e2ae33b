//! Secret references: Secrets Manager names/ARNs and SSM parameters (`ssm:` or ARN).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a secret value lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "service", rename_all = "snake_case")]
pub enum SecretRef {
    /// `SecretId` as given: a name or a full ARN.
    SecretsManager {
        id: String,
        /// Region from the ARN, which wins over the pod's region.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// Parameter name (`/path/name` or `name`), or a full ARN for shared parameters.
    SsmParameter {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
}

/// The two services a secret can come from (ASCP `objectType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    SecretsManager,
    SsmParameter,
}

impl Service {
    /// ASCP spelling of `objectType`.
    pub fn parse_object_type(s: &str) -> Option<Service> {
        match s {
            "secretsmanager" => Some(Service::SecretsManager),
            "ssmparameter" => Some(Service::SsmParameter),
            _ => None,
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::SecretsManager { id, .. } => f.write_str(id),
            SecretRef::SsmParameter { name, .. } if name.starts_with("arn:") => f.write_str(name),
            SecretRef::SsmParameter { name, .. } => write!(f, "ssm:{name}"),
        }
    }
}

const SM_NAME_MAX: usize = 512;
const SSM_NAME_MAX: usize = 2048;

impl SecretRef {
    /// Parse an annotation `<ref>`: `prod/db`, a Secrets Manager ARN,
    /// `ssm:/path/name` or an SSM parameter ARN.
    pub fn parse(s: &str) -> Result<SecretRef, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("is empty; expected a Secrets Manager name or ARN, or ssm:/path".into());
        }
        if let Some(name) = s.strip_prefix("ssm:") {
            return Self::ssm_name(name, s)
                .map(|name| SecretRef::SsmParameter { name, region: None });
        }
        if s.starts_with("arn:") {
            return Self::parse_arn(s);
        }
        Self::sm_name(s).map(|id| SecretRef::SecretsManager { id, region: None })
    }

    /// Parse as the given service (ASCP `objectName` + `objectType`).
    pub fn parse_as(s: &str, service: Service) -> Result<SecretRef, String> {
        let t = s.trim();
        // Empty goes through `parse` too, which refuses it (found by fuzzing).
        let parsed = if t.is_empty() || t.starts_with("arn:") || t.starts_with("ssm:") {
            Self::parse(s)?
        } else {
            match service {
                Service::SecretsManager => SecretRef::SecretsManager {
                    id: Self::sm_name(s.trim())?,
                    region: None,
                },
                Service::SsmParameter => SecretRef::SsmParameter {
                    name: Self::ssm_name(s.trim(), s)?,
                    region: None,
                },
            }
        };
        if parsed.service() != service {
            return Err(format!("{s:?} is not of the objectType given"));
        }
        Ok(parsed)
    }

    pub fn service(&self) -> Service {
        match self {
            SecretRef::SecretsManager { .. } => Service::SecretsManager,
            SecretRef::SsmParameter { .. } => Service::SsmParameter,
        }
    }

    /// Region pinned by an ARN, if any.
    pub fn region(&self) -> Option<&str> {
        match self {
            SecretRef::SecretsManager { region, .. } | SecretRef::SsmParameter { region, .. } => {
                region.as_deref()
            }
        }
    }

    /// The id/name passed to AWS.
    pub fn id(&self) -> &str {
        match self {
            SecretRef::SecretsManager { id, .. } => id,
            SecretRef::SsmParameter { name, .. } => name,
        }
    }

    /// Default file name ASCP would use: the name with `/` replaced by `_`.
    pub fn default_file_name(&self) -> String {
        let name = match self {
            SecretRef::SecretsManager {
                id,
                region: Some(_),
            } => arn_resource(id)
                .and_then(|r| r.strip_prefix("secret:"))
                .unwrap_or(id),
            SecretRef::SsmParameter {
                name,
                region: Some(_),
            } => arn_resource(name)
                .and_then(|r| r.strip_prefix("parameter"))
                .unwrap_or(name),
            other => other.id(),
        };
        name.replace('/', "_")
    }

    pub(crate) fn sm_name(s: &str) -> Result<String, String> {
        if s.len() > SM_NAME_MAX {
            return Err(format!(
                "Secrets Manager name is longer than {SM_NAME_MAX} characters"
            ));
        }
        match s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
        {
            Some(c) => Err(format!(
                "{s:?} is not a valid Secrets Manager name: character {c:?} is not allowed \
                 (letters, digits and /_+=.@- only; use ssm:/path for SSM parameters)"
            )),
            None => Ok(s.to_string()),
        }
    }

    pub(crate) fn ssm_name(name: &str, whole: &str) -> Result<String, String> {
        if name.is_empty() || name == "/" {
            return Err(format!(
                "{whole:?} names no SSM parameter; expected ssm:/path/name"
            ));
        }
        if name.len() > SSM_NAME_MAX {
            return Err(format!(
                "SSM parameter name is longer than {SSM_NAME_MAX} characters"
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/_.-".contains(*c)))
        {
            return Err(format!(
                "{whole:?} is not a valid SSM parameter name: character {c:?} is not allowed \
                 (letters, digits and /_.- only)"
            ));
        }
        if name.contains("//") || (name.starts_with(|c: char| c != '/') && name.contains('/')) {
            return Err(format!(
                "{whole:?} is not a valid SSM parameter name: a hierarchical name starts with / \
                 and has no empty segments"
            ));
        }
        Ok(name.to_string())
    }

    fn parse_arn(s: &str) -> Result<SecretRef, String> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [_, partition, service, region, account, resource] = parts[..] else {
            return Err(format!(
                "{s:?} is not an ARN: expected arn:partition:service:region:account:resource"
            ));
        };
        if !valid_partition(partition) {
            return Err(format!(
                "{s:?} has an unknown partition {partition:?} (aws, aws-cn, aws-us-gov)"
            ));
        }
        if !crate::validate::is_region(region) {
            return Err(format!("{s:?} has an invalid region {region:?}"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{s:?} has an invalid account id {account:?} (12 digits)"
            ));
        }
        let region = Some(region.to_string());
        match service {
            "secretsmanager" => match resource.strip_prefix("secret:") {
                Some(name) if !name.is_empty() => {
                    Self::sm_name(name)?;
                    Ok(SecretRef::SecretsManager {
                        id: s.to_string(),
                        region,
                    })
                }
                _ => Err(format!(
                    "{s:?} is not a secret ARN: expected ...:secret:<name>-AbCdEf"
                )),
            },
            "ssm" => match resource.strip_prefix("parameter") {
                Some(path) if path.starts_with('/') && path.len() > 1 => {
                    let name = if path[1..].contains('/') {
                        path
                    } else {
                        &path[1..]
                    };
                    Self::ssm_name(name, s)?;
                    Ok(SecretRef::SsmParameter {
                        name: s.to_string(),
                        region,
                    })
                }
                _ => Err(format!(
                    "{s:?} is not a parameter ARN: expected ...:parameter/path/name"
                )),
            },
            other => Err(format!(
                "{s:?} is an ARN of service {other:?}; only secretsmanager and ssm are supported"
            )),
        }
    }
}

fn arn_resource(arn: &str) -> Option<&str> {
    arn.splitn(6, ':').nth(5)
}

fn valid_partition(p: &str) -> bool {
    p == "aws"
        || p.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .split('-')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(id: &str, region: Option<&str>) -> SecretRef {
        SecretRef::SecretsManager {
            id: id.into(),
            region: region.map(Into::into),
        }
    }
    fn ssm(name: &str, region: Option<&str>) -> SecretRef {
        SecretRef::SsmParameter {
            name: name.into(),
            region: region.map(Into::into),
        }
    }

    #[test]
    fn secrets_manager_names() {
        assert_eq!(SecretRef::parse("prod/db").unwrap(), sm("prod/db", None));
        assert_eq!(
            SecretRef::parse(" a_b+c=d.e@f-g ").unwrap(),
            sm("a_b+c=d.e@f-g", None)
        );
    }

    #[test]
    fn secrets_manager_arns_in_every_partition() {
        for (partition, region) in [
            ("aws", "us-east-1"),
            ("aws-cn", "cn-north-1"),
            ("aws-us-gov", "us-gov-west-1"),
        ] {
            let arn = format!(
                "arn:{partition}:secretsmanager:{region}:123456789012:secret:prod/db-AbCdEf"
            );
            assert_eq!(SecretRef::parse(&arn).unwrap(), sm(&arn, Some(region)));
        }
    }

    #[test]
    fn ssm_prefix_and_arns() {
        assert_eq!(
            SecretRef::parse("ssm:/app/key").unwrap(),
            ssm("/app/key", None)
        );
        assert_eq!(SecretRef::parse("ssm:plain").unwrap(), ssm("plain", None));
        for (partition, region) in [
            ("aws", "eu-west-1"),
            ("aws-cn", "cn-northwest-1"),
            ("aws-us-gov", "us-gov-east-1"),
        ] {
            let arn = format!("arn:{partition}:ssm:{region}:123456789012:parameter/app/key");
            assert_eq!(SecretRef::parse(&arn).unwrap(), ssm(&arn, Some(region)));
            let flat = format!("arn:{partition}:ssm:{region}:123456789012:parameter/key");
            assert_eq!(SecretRef::parse(&flat).unwrap(), ssm(&flat, Some(region)));
        }
    }

    #[test]
    fn rejects_bad_refs_with_reasons() {
        let cases = [
            ("", "is empty"),
            ("ssm:", "names no SSM parameter"),
            ("ssm:/a//b", "no empty segments"),
            ("ssm:a/b", "starts with /"),
            ("has space", "character ' ' is not allowed"),
            ("arn:aws:s3:::bucket", "invalid region"),
            (
                "arn:aws:s3:us-east-1:123456789012:bucket",
                "only secretsmanager and ssm",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:key:x",
                "not a secret ARN",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:12345:secret:x",
                "invalid account id",
            ),
            (
                "arn:azure:secretsmanager:us-east-1:123456789012:secret:x",
                "unknown partition",
            ),
            (
                "arn:aws:secretsmanager:nowhere:123456789012:secret:x",
                "invalid region",
            ),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter",
                "not a parameter ARN",
            ),
            ("arn:aws:ssm", "is not an ARN"),
        ];
        for (input, want) in cases {
            let err = SecretRef::parse(input).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err}");
        }
        let long = "a".repeat(SM_NAME_MAX + 1);
        assert!(
            SecretRef::parse(&long)
                .unwrap_err()
                .contains("longer than 512")
        );
    }

    #[test]
    fn parse_as_checks_object_type() {
        assert_eq!(
            SecretRef::parse_as("MyParam", Service::SsmParameter).unwrap(),
            ssm("MyParam", None)
        );
        assert_eq!(
            SecretRef::parse_as("/a/b", Service::SsmParameter).unwrap(),
            ssm("/a/b", None)
        );
        assert_eq!(
            SecretRef::parse_as("db", Service::SecretsManager).unwrap(),
            sm("db", None)
        );
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/key";
        let err = SecretRef::parse_as(arn, Service::SecretsManager).unwrap_err();
        assert!(err.contains("not of the objectType"), "{err}");
        // An empty objectName was accepted as a Secrets Manager name (found by fuzzing).
        for service in [Service::SecretsManager, Service::SsmParameter] {
            for empty in ["", "  "] {
                assert!(
                    SecretRef::parse_as(empty, service).is_err(),
                    "{empty:?} {service:?}"
                );
            }
        }
    }

    #[test]
    fn default_file_names_follow_ascp() {
        assert_eq!(
            SecretRef::parse("prod/db").unwrap().default_file_name(),
            "prod_db"
        );
        assert_eq!(
            SecretRef::parse("ssm:/app/key")
                .unwrap()
                .default_file_name(),
            "_app_key"
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
        assert_eq!(
            SecretRef::parse(arn).unwrap().default_file_name(),
            "prod_db-AbCdEf"
        );
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/key";
        assert_eq!(
            SecretRef::parse(arn).unwrap().default_file_name(),
            "_app_key"
        );
    }

    #[test]
    fn displays_as_written() {
        for s in [
            "prod/db",
            "ssm:/app/key",
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/key",
        ] {
            assert_eq!(SecretRef::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn name_length_limits_are_pinned_on_both_sides() {
        let sm_max = "a".repeat(SM_NAME_MAX);
        assert_eq!(SecretRef::parse(&sm_max).unwrap(), sm(&sm_max, None));
        assert_eq!(
            SecretRef::parse(&format!("{sm_max}a")).unwrap_err(),
            "Secrets Manager name is longer than 512 characters"
        );
        let ssm_max = format!("/{}", "a".repeat(SSM_NAME_MAX - 1));
        assert_eq!(
            SecretRef::parse(&format!("ssm:{ssm_max}")).unwrap(),
            ssm(&ssm_max, None)
        );
        assert_eq!(
            SecretRef::parse(&format!("ssm:{ssm_max}a")).unwrap_err(),
            "SSM parameter name is longer than 2048 characters"
        );
        // The name inside an ARN is held to the same limit.
        let arn =
            |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}");
        assert!(SecretRef::parse(&arn(&sm_max)).is_ok());
        assert!(
            SecretRef::parse(&arn(&format!("{sm_max}a")))
                .unwrap_err()
                .contains("longer than 512")
        );
    }

    #[test]
    fn partitions_are_aws_or_aws_dash_lowercase_words() {
        for ok in ["aws", "aws-cn", "aws-us-gov", "aws-iso-b"] {
            assert!(valid_partition(ok), "{ok}");
        }
        for bad in [
            "", "aw", "awsx", "aws-", "aws--x", "aws-x-", "aws-X", "aws-x1", "AWS", "x-aws",
        ] {
            assert!(!valid_partition(bad), "{bad}");
        }
        let err = SecretRef::parse("arn:aws-:secretsmanager:us-east-1:123456789012:secret:x")
            .unwrap_err();
        assert!(err.contains("unknown partition \"aws-\""), "{err}");
    }

    #[test]
    fn arn_fields_are_each_checked() {
        let cases = [
            (
                "arn:aws:secretsmanager:us-east-1:1234567890123:secret:x",
                "invalid account id",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:12345678901:secret:x",
                "invalid account id",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:12345678901x:secret:x",
                "invalid account id",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:",
                "not a secret ARN",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:a b",
                "character ' ' is not allowed",
            ),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter/",
                "not a parameter ARN",
            ),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameterx",
                "not a parameter ARN",
            ),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter/a b",
                "not a valid SSM parameter name",
            ),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter/a//b",
                "no empty segments",
            ),
            (
                "arn:aws:ssm:us-east-1:123456789012:document/x",
                "not a parameter ARN",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012",
                "is not an ARN",
            ),
        ];
        for (input, want) in cases {
            let err = SecretRef::parse(input).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err}");
        }
        // A 12-digit account is the only accepted form.
        assert!(SecretRef::parse("arn:aws:secretsmanager:us-east-1:000000000000:secret:x").is_ok());
    }

    #[test]
    fn ssm_names_accept_their_alphabet_and_refuse_others() {
        for ok in ["ssm:a", "ssm:a.b-c_d", "ssm:/a/b.c", "ssm:/x"] {
            assert!(SecretRef::parse(ok).is_ok(), "{ok}");
        }
        for (bad, want) in [
            ("ssm:/", "names no SSM parameter"),
            ("ssm: ", "names no SSM parameter"),
            ("ssm:a+b", "character '+' is not allowed"),
            ("ssm:/a//", "no empty segments"),
            ("ssm:a/", "starts with /"),
        ] {
            let err = SecretRef::parse(bad).unwrap_err();
            assert!(err.contains(want), "{bad:?}: {err}");
        }
    }

    #[test]
    fn object_types_and_services() {
        assert_eq!(
            Service::parse_object_type("secretsmanager"),
            Some(Service::SecretsManager)
        );
        assert_eq!(
            Service::parse_object_type("ssmparameter"),
            Some(Service::SsmParameter)
        );
        assert_eq!(Service::parse_object_type("SecretsManager"), None);
        let s = SecretRef::parse("ssm:/a").unwrap();
        assert_eq!(
            (s.service(), s.id(), s.region()),
            (Service::SsmParameter, "/a", None)
        );
        let s = SecretRef::parse("db").unwrap();
        assert_eq!(
            (s.service(), s.id(), s.region()),
            (Service::SecretsManager, "db", None)
        );
        // An ssm: prefix with the other objectType, and names trimmed.
        let err = SecretRef::parse_as("ssm:/a", Service::SecretsManager).unwrap_err();
        assert_eq!(err, "\"ssm:/a\" is not of the objectType given");
        assert_eq!(
            SecretRef::parse_as(" db ", Service::SecretsManager).unwrap(),
            sm("db", None)
        );
        assert_eq!(
            SecretRef::parse_as(" /a ", Service::SsmParameter).unwrap(),
            ssm("/a", None)
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db";
        assert_eq!(
            SecretRef::parse_as(arn, Service::SecretsManager).unwrap(),
            sm(arn, Some("us-east-1"))
        );
        assert!(SecretRef::parse_as("a b", Service::SecretsManager).is_err());
        assert!(SecretRef::parse_as("a+b", Service::SsmParameter).is_err());
    }

    #[test]
    fn default_file_names_of_flat_and_unparsed_arns() {
        let flat = "arn:aws:ssm:us-east-1:123456789012:parameter/key";
        assert_eq!(SecretRef::parse(flat).unwrap().default_file_name(), "_key");
        // A region without an ARN (hand-built) falls back to the id.
        assert_eq!(sm("a/b", Some("us-east-1")).default_file_name(), "a_b");
        assert_eq!(ssm("/a/b", Some("us-east-1")).default_file_name(), "_a_b");
    }
}
