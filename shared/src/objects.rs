//! The ASCP `objects` YAML (as pasted from a `SecretProviderClass`), plus the
//! extensions `optional` and `format`.

use serde::Deserialize;

use crate::config::{Format, JmesPathEntry, SecretSpec};
use crate::refs::{SecretRef, Service};
use crate::validate::parse_mode;

/// Largest `objects` annotation accepted, before any YAML parsing.
pub const MAX_OBJECTS_BYTES: usize = 64 * 1024;
/// Most objects in one pod.
pub const MAX_OBJECTS: usize = 500;
/// Deepest bracket nesting accepted in the `objects` YAML (real lists use 2).
pub const MAX_OBJECTS_DEPTH: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AscpObject {
    object_name: String,
    object_type: Option<String>,
    object_alias: Option<String>,
    object_version: Option<String>,
    object_version_label: Option<String>,
    #[serde(default)]
    jmes_path: Vec<AscpJmesPath>,
    file_permission: Option<serde_yaml_ng::Value>,
    failover_object: Option<AscpFailover>,
    #[serde(default)]
    optional: bool,
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AscpJmesPath {
    path: String,
    object_alias: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AscpFailover {
    object_name: String,
    object_version: Option<String>,
    object_version_label: Option<String>,
}

/// Parse the `objects` YAML into specs. Errors are reported per object
/// (`objects[2].objectName: …`) and all at once.
pub fn parse_objects(yaml: &str) -> Result<Vec<SecretSpec>, Vec<String>> {
    if yaml.len() > MAX_OBJECTS_BYTES {
        return Err(vec![format!(
            "is {} bytes; the limit is {MAX_OBJECTS_BYTES} bytes",
            yaml.len()
        )]);
    }
    // Cheap before parsing: deep flow nesting costs the YAML parser real time.
    let depth = crate::validate::nesting_depth(yaml);
    if depth > MAX_OBJECTS_DEPTH {
        return Err(vec![format!(
            "is nested {depth} levels deep; an ASCP objects list needs at most {MAX_OBJECTS_DEPTH}"
        )]);
    }
    let objects: Vec<AscpObject> = match serde_yaml_ng::from_str::<Option<Vec<AscpObject>>>(yaml) {
        Ok(Some(v)) => v,
        Ok(None) => Vec::new(),
        Err(e) => return Err(vec![format!("is not a valid ASCP objects list: {e}")]),
    };
    if objects.len() > MAX_OBJECTS {
        return Err(vec![format!(
            "lists {} objects; the limit is {MAX_OBJECTS}",
            objects.len()
        )]);
    }
    let mut specs = Vec::with_capacity(objects.len());
    let mut problems = Vec::new();
    for (i, o) in objects.into_iter().enumerate() {
        match convert(o) {
            Ok(spec) => specs.push(spec),
            Err(errs) => problems.extend(errs.into_iter().map(|e| format!("objects[{i}].{e}"))),
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems)
    }
}

fn convert(o: AscpObject) -> Result<SecretSpec, Vec<String>> {
    let mut problems = Vec::new();
    let service = match o.object_type.as_deref() {
        Some(t) => match Service::parse_object_type(t) {
            Some(s) => Some(s),
            None => {
                problems.push(format!(
                    "objectType: {t:?} is not secretsmanager or ssmparameter"
                ));
                None
            }
        },
        None => None,
    };
    let source = match (service, o.object_name.trim().starts_with("arn:")) {
        (Some(s), _) => SecretRef::parse_as(&o.object_name, s),
        (None, true) => SecretRef::parse(&o.object_name),
        (None, false) => Err("objectType is required unless objectName is an ARN".to_string()),
    };
    let source = source
        .map_err(|e| problems.push(format!("objectName: {e}")))
        .ok();

    let format = match o.format.as_deref() {
        None => Format::Raw,
        Some(f) => Format::parse(f).unwrap_or_else(|| {
            problems.push(format!(
                "format: {f:?} is not raw, dotenv, json, yaml, properties, files or none"
            ));
            Format::Raw
        }),
    };
    let file_permission = file_permission(o.file_permission.as_ref(), &mut problems);
    let failover = o.failover_object.and_then(|f| {
        if f.object_version.is_some() && f.object_version != o.object_version
            || f.object_version_label.is_some() && f.object_version_label != o.object_version_label
        {
            problems.push(
                "failoverObject: objectVersion/objectVersionLabel must match the primary object's"
                    .into(),
            );
        }
        let svc = source.as_ref().map(SecretRef::service).or(service)?;
        SecretRef::parse_as(&f.object_name, svc)
            .map_err(|e| problems.push(format!("failoverObject.objectName: {e}")))
            .ok()
    });
    let jmes_path = jmes_paths(o.jmes_path, &mut problems);
    if source
        .as_ref()
        .is_some_and(|s| s.service() == Service::SsmParameter)
    {
        check_ssm_pins(
            o.object_version.as_deref(),
            o.object_version_label.as_deref(),
            &mut problems,
        );
    }
    let Some(source) = source else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let path = o.object_alias.unwrap_or_else(|| source.default_file_name());
    Ok(SecretSpec {
        path,
        format,
        version_id: o.object_version,
        version_stage: o.object_version_label,
        jmes_path,
        file_permission,
        optional: o.optional,
        failover,
        source,
    })
}

/// `filePermission`: octal digits as a string or a YAML number (`0644` → 0o644).
fn file_permission(v: Option<&serde_yaml_ng::Value>, problems: &mut Vec<String>) -> Option<u32> {
    let text = match v? {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        _ => {
            problems.push("filePermission: must be an octal string such as \"0440\"".into());
            return None;
        }
    };
    parse_mode(&text)
        .map_err(|e| problems.push(format!("filePermission: {e}")))
        .ok()
}

/// `jmesPath` entries, each expression non-empty and bounded.
fn jmes_paths(entries: Vec<AscpJmesPath>, problems: &mut Vec<String>) -> Vec<JmesPathEntry> {
    let mut out = Vec::with_capacity(entries.len());
    for (j, entry) in entries.into_iter().enumerate() {
        if entry.path.trim().is_empty() {
            problems.push(format!("jmesPath[{j}].path: is empty"));
        } else if let Err(e) = crate::validate::check_jmes_path(&entry.path) {
            problems.push(format!("jmesPath[{j}].path: {e}"));
        }
        out.push(JmesPathEntry {
            path: entry.path,
            alias: entry.object_alias,
        });
    }
    out
}

/// An SSM parameter is pinned by a numeric version or a label, not both.
fn check_ssm_pins(version: Option<&str>, label: Option<&str>, problems: &mut Vec<String>) {
    if version.is_some_and(|v| v.parse::<u64>().is_err()) {
        problems.push("objectVersion: an SSM parameter version is a number".into());
    }
    if version.is_some() && label.is_some() {
        problems.push(
            "objectVersion and objectVersionLabel: an SSM parameter is pinned by one of them, not both"
                .into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_ascp_field() {
        let yaml = r#"
- objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"
  objectAlias: db.json
  objectVersionLabel: AWSCURRENT
  filePermission: "0400"
  jmesPath:
    - path: username
      objectAlias: db/user
    - path: password
      objectAlias: db/pass
  failoverObject:
    objectName: "arn:aws:secretsmanager:us-west-2:123456789012:secret:prod/db-AbCdEf"
- objectName: /app/key
  objectType: ssmparameter
  objectVersion: "3"
  optional: true
  format: dotenv
"#;
        let specs = parse_objects(yaml).unwrap();
        assert_eq!(specs.len(), 2);
        let db = &specs[0];
        assert_eq!(db.path, "db.json");
        assert_eq!(db.version_stage.as_deref(), Some("AWSCURRENT"));
        assert_eq!(db.file_permission, Some(0o400));
        assert_eq!(
            db.jmes_path[1],
            JmesPathEntry {
                path: "password".into(),
                alias: "db/pass".into()
            }
        );
        assert_eq!(db.failover.as_ref().unwrap().region(), Some("us-west-2"));
        assert_eq!(db.source.region(), Some("us-east-1"));
        let key = &specs[1];
        assert_eq!(key.path, "_app_key");
        assert_eq!(
            key.source,
            SecretRef::SsmParameter {
                name: "/app/key".into(),
                region: None
            }
        );
        assert_eq!(key.version_id.as_deref(), Some("3"));
        assert!(key.optional);
        assert_eq!(key.format, Format::Dotenv);
    }

    #[test]
    fn numeric_file_permission_is_read_as_octal_digits() {
        let specs =
            parse_objects("- {objectName: db, objectType: secretsmanager, filePermission: 0644}")
                .unwrap();
        assert_eq!(specs[0].file_permission, Some(0o644));
        // A leading 0 makes the YAML scalar a string; without one it is a
        // YAML number, whose decimal digits are read as octal all the same.
        let specs =
            parse_objects("- {objectName: db, objectType: secretsmanager, filePermission: 440}")
                .unwrap();
        assert_eq!(specs[0].file_permission, Some(0o440));
        let err =
            parse_objects("- {objectName: db, objectType: secretsmanager, filePermission: 999}")
                .unwrap_err()
                .join("");
        assert!(err.contains("objects[0].filePermission: \"999\""), "{err}");
        let err =
            parse_objects("- {objectName: db, objectType: secretsmanager, filePermission: [4]}")
                .unwrap_err()
                .join("");
        assert!(err.contains("must be an octal string"), "{err}");
    }

    #[test]
    fn empty_yaml_is_no_objects() {
        assert!(parse_objects("").unwrap().is_empty());
    }

    #[test]
    fn reports_every_problem_with_its_index() {
        let yaml = r#"
- objectName: db
- objectName: x
  objectType: vault
- objectName: "bad name"
  objectType: secretsmanager
  format: toml
  filePermission: "999"
- objectName: /p
  objectType: ssmparameter
  objectVersion: latest
  jmesPath: [{path: "", objectAlias: a}]
"#;
        let errs = parse_objects(yaml).unwrap_err().join("\n");
        for want in [
            "objects[0].objectName: objectType is required unless objectName is an ARN",
            "objects[1].objectType: \"vault\" is not secretsmanager or ssmparameter",
            "objects[2].objectName: \"bad name\" is not a valid Secrets Manager name",
            "objects[2].format: \"toml\"",
            "objects[2].filePermission: \"999\"",
            "objects[3].objectVersion: an SSM parameter version is a number",
            "objects[3].jmesPath[0].path: is empty",
        ] {
            assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
        }
    }

    #[test]
    fn rejects_unknown_fields_and_malformed_yaml() {
        let err = parse_objects("- objectNmae: db").unwrap_err().join("");
        assert!(err.contains("unknown field `objectNmae`"), "{err}");
        let err = parse_objects("- objectName: [").unwrap_err().join("");
        assert!(err.contains("is not a valid ASCP objects list"), "{err}");
        let err = parse_objects("objectName: db").unwrap_err().join("");
        assert!(err.contains("is not a valid ASCP objects list"), "{err}");
    }

    #[test]
    fn rejects_oversized_yaml_before_parsing() {
        let yaml = "#".repeat(MAX_OBJECTS_BYTES + 1);
        let err = parse_objects(&yaml).unwrap_err().join("");
        assert!(err.contains("the limit is 65536 bytes"), "{err}");
    }

    #[test]
    fn ssm_pins_by_version_or_label_not_both() {
        let yaml = "- {objectName: /app/key, objectType: ssmparameter, objectVersion: '3', objectVersionLabel: prod}";
        let errs = parse_objects(yaml).unwrap_err().join("\n");
        assert!(errs.contains("pinned by one of them, not both"), "{errs}");
        let yaml = "- {objectName: db, objectType: secretsmanager, objectVersion: v1, objectVersionLabel: AWSCURRENT}";
        assert!(parse_objects(yaml).is_ok(), "Secrets Manager takes both");
    }

    #[test]
    fn rejects_alias_bombs() {
        let yaml = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
        assert!(parse_objects(yaml).is_err());
    }

    #[test]
    fn failover_versions_must_match() {
        let yaml = "- {objectName: db, objectType: secretsmanager, objectVersionLabel: A, failoverObject: {objectName: db2, objectVersionLabel: B}}";
        let err = parse_objects(yaml).unwrap_err().join("");
        assert!(err.contains("must match the primary"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let bomb = "{".repeat(60_000);
        let err = parse_objects(&bomb).unwrap_err();
        assert_eq!(
            err,
            vec!["is nested 60000 levels deep; an ASCP objects list needs at most 16".to_string()]
        );
        let deep_jmes = format!(
            "- objectName: prod/db\n  objectType: secretsmanager\n  jmesPath:\n    - path: \"{}\"\n      objectAlias: x\n",
            "[?".repeat(400)
        );
        let err = parse_objects(&deep_jmes).unwrap_err();
        assert!(
            err[0].starts_with("objects[0].jmesPath[0].path: is nested 400 levels deep"),
            "{err:?}"
        );
    }

    #[test]
    fn size_depth_and_count_limits_on_both_sides() {
        let at_limit = "#".repeat(MAX_OBJECTS_BYTES);
        assert_eq!(parse_objects(&at_limit).unwrap(), vec![]);
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // 16 levels get past the depth check to the parser (not a list of objects).
        let err = parse_objects(&nested(16)).unwrap_err().join("");
        assert!(err.starts_with("is not a valid ASCP objects list"), "{err}");
        assert_eq!(
            parse_objects(&nested(17)).unwrap_err(),
            vec!["is nested 17 levels deep; an ASCP objects list needs at most 16".to_string()]
        );
        let objects = |n: usize| {
            (0..n)
                .map(|i| format!("- {{objectName: o{i}, objectType: secretsmanager}}\n"))
                .collect::<String>()
        };
        assert_eq!(parse_objects(&objects(MAX_OBJECTS)).unwrap().len(), 500);
        assert_eq!(
            parse_objects(&objects(MAX_OBJECTS + 1)).unwrap_err(),
            vec!["lists 501 objects; the limit is 500".to_string()]
        );
    }

    #[test]
    fn failover_may_repeat_or_omit_the_primary_version() {
        for yaml in [
            "- {objectName: db, objectType: secretsmanager, objectVersion: v1, failoverObject: {objectName: db2, objectVersion: v1}}",
            "- {objectName: db, objectType: secretsmanager, objectVersion: v1, failoverObject: {objectName: db2}}",
            "- {objectName: db, objectType: secretsmanager, objectVersionLabel: L, failoverObject: {objectName: db2, objectVersionLabel: L}}",
            "- {objectName: db, objectType: secretsmanager, objectVersionLabel: L, failoverObject: {objectName: db2}}",
        ] {
            let specs = parse_objects(yaml).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
            assert_eq!(
                specs[0].failover,
                Some(SecretRef::SecretsManager {
                    id: "db2".into(),
                    region: None
                })
            );
        }
        let err = parse_objects(
            "- {objectName: db, objectType: secretsmanager, objectVersion: v1, failoverObject: {objectName: db2, objectVersion: v2}}",
        )
        .unwrap_err();
        assert_eq!(
            err,
            vec![
                "objects[0].failoverObject: objectVersion/objectVersionLabel must match the primary object's"
                    .to_string()
            ]
        );
    }

    #[test]
    fn an_empty_object_name_is_refused_for_either_type() {
        // Was accepted as the Secrets Manager name "" (found by fuzzing).
        for ty in ["secretsmanager", "ssmparameter"] {
            let errs =
                parse_objects(&format!("- {{objectName: '  ', objectType: {ty}}}")).unwrap_err();
            assert!(errs[0].starts_with("objects[0].objectName: "), "{errs:?}");
        }
    }
}
