//! The SAM template and the guardrail policies: the role's untag grant matches what the checks
//! remediate (which actions the role grants is tested against real calls in `role_actions`), the
//! rules forward exactly what the function handles, alarms reach a person, and a second stack can
//! be deployed beside the first. Organization mode: everything it adds is conditional, the central
//! bus is open to the organization only, the member template (infra/member.yaml) grants what the
//! per-account path calls and forwards what the central rules match, and the state machine's
//! definition (executed in `state_machine`) has the documented contract.

use std::collections::BTreeSet;

use iam_sentinel::snapshot::{Tag, UserSnapshot};
use serde_json::{Map, Value, json};

const TEMPLATE: &str = include_str!("../../infra/template.yaml");
const REQUIRE_MFA: &str = include_str!("../../infra/policies/RequireMFA.json");

// ---------------------------------------------------------------------------------------------
// A reader for the YAML subset the template uses (the project has no YAML dependency): block
// mappings and sequences, flow sequences and JSON flow mappings, plain and quoted scalars,
// folded scalars, and CloudFormation short-form tags. Scalars stay strings; a tagged scalar
// stays as written ("!Ref X"); a tag followed by a nested block becomes {"!Tag": block}.
// Anything outside the subset panics instead of being read wrongly.
// ---------------------------------------------------------------------------------------------

struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// Drops a trailing ` # comment` that is not inside quotes.
fn strip_comment(s: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1] == b' ') => return s[..i].trim_end(),
            _ => {}
        }
    }
    s.trim_end()
}

fn yaml_lines(src: &str) -> Vec<Line<'_>> {
    src.lines()
        .filter_map(|l| {
            let text = strip_comment(l);
            let trimmed = text.trim_start();
            if trimmed.is_empty() {
                return None;
            }
            assert!(!l.contains('\t'), "tab in template line: {l}");
            Some(Line { indent: text.len() - trimmed.len(), text: trimmed })
        })
        .collect()
}

/// Splits `a, [b, c], "d, e"` at top-level commas.
fn split_flow(inner: &str) -> Vec<&str> {
    let (mut depth, mut single, mut double, mut start) = (0i32, false, false, 0);
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '[' | '{' if !single && !double => depth += 1,
            ']' | '}' if !single && !double => depth -= 1,
            ',' if depth == 0 && !single && !double => {
                parts.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = inner[start..].trim();
    if !last.is_empty() {
        parts.push(last);
    }
    parts
}

fn scalar(s: &str) -> Value {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Value::Array(split_flow(inner).into_iter().map(scalar).collect());
    }
    if s.starts_with('{') {
        return serde_json::from_str(s).unwrap_or_else(|e| panic!("flow mapping {s} is not JSON: {e}"));
    }
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return Value::String(inner.replace("\\\"", "\"").replace("\\\\", "\\"));
    }
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Value::String(inner.replace("''", "'"));
    }
    Value::String(s.to_owned())
}

/// `key: rest` → (key, rest); `None` for a line that is not a mapping entry.
fn mapping_entry(text: &str) -> Option<(&str, &str)> {
    // A double-quoted key (`"Null":`, which YAML would otherwise read as null).
    if let Some(rest) = text.strip_prefix('"') {
        let end = rest.find('"')?;
        let after = &rest[end + 1..];
        return (after == ":" || after.starts_with(": ")).then(|| (&rest[..end], after[1..].trim()));
    }
    if text.starts_with(['\'', '[', '{', '!']) {
        return None;
    }
    let colon = text.find(": ").or_else(|| text.strip_suffix(':').map(str::len))?;
    Some((&text[..colon], text[colon + 1..].trim()))
}

fn parse_block<'a>(lines: &mut [Line<'a>], i: &mut usize, indent: usize) -> Value {
    if lines[*i].text == "-" || lines[*i].text.starts_with("- ") {
        let mut items = Vec::new();
        while *i < lines.len()
            && lines[*i].indent == indent
            && (lines[*i].text == "-" || lines[*i].text.starts_with("- "))
        {
            let text: &'a str = lines[*i].text;
            let item = text[1..].trim_start();
            if item.is_empty() {
                *i += 1;
                items.push(nested(lines, i, indent));
            } else if mapping_entry(item).is_some() {
                // `- key: value` opens a mapping whose entries are indented like `key`.
                let offset = text.len() - item.len();
                lines[*i] = Line { indent: indent + offset, text: item };
                items.push(parse_block(lines, i, indent + offset));
            } else {
                *i += 1;
                items.push(tagged_or_scalar(lines, i, indent, item));
            }
        }
        return Value::Array(items);
    }
    let mut map = Map::new();
    while *i < lines.len() && lines[*i].indent == indent {
        let text: &'a str = lines[*i].text;
        let (key, rest) = mapping_entry(text).unwrap_or_else(|| panic!("not a mapping entry: {text}"));
        *i += 1;
        let value = if rest.is_empty() {
            // A block sequence may sit at the key's own indentation.
            if *i < lines.len() && lines[*i].indent == indent && lines[*i].text.starts_with("- ") {
                parse_block(lines, i, indent)
            } else {
                nested(lines, i, indent)
            }
        } else if let Some((tag, style)) = block_scalar(rest) {
            let mut folded = Vec::new();
            while *i < lines.len() && lines[*i].indent > indent {
                folded.push(lines[*i].text);
                *i += 1;
            }
            let text = folded.join(if style.starts_with('>') { " " } else { "\n" });
            Value::String(match tag {
                Some(tag) => format!("{tag} {text}"),
                None => text,
            })
        } else {
            tagged_or_scalar(lines, i, indent, rest)
        };
        let key = scalar(key).as_str().unwrap().to_owned();
        assert!(map.insert(key.clone(), value).is_none(), "duplicate key {key}");
    }
    Value::Object(map)
}

/// A block scalar indicator (`|`, `>-`, …), possibly after a tag (`!Sub |`): (tag, indicator).
/// Lines keep no indentation: enough for the JSON the template embeds.
fn block_scalar(rest: &str) -> Option<(Option<&str>, &str)> {
    let (tag, style) = match rest.split_once(' ') {
        Some((tag, style)) if tag.starts_with('!') => (Some(tag), style),
        _ => (None, rest),
    };
    matches!(style, ">-" | ">" | "|" | "|-").then_some((tag, style))
}

/// The block under the current line, or null if there is none.
fn nested(lines: &mut [Line<'_>], i: &mut usize, indent: usize) -> Value {
    if *i < lines.len() && lines[*i].indent > indent {
        let deeper = lines[*i].indent;
        parse_block(lines, i, deeper)
    } else {
        Value::Null
    }
}

/// A lone tag (`!If`) followed by a nested block, or a scalar.
fn tagged_or_scalar(lines: &mut [Line<'_>], i: &mut usize, indent: usize, text: &str) -> Value {
    if text.starts_with('!') && !text.contains(' ') && *i < lines.len() && lines[*i].indent > indent {
        let mut map = Map::new();
        map.insert(text.to_owned(), nested(lines, i, indent));
        return Value::Object(map);
    }
    scalar(text)
}

fn parse_yaml(src: &str) -> Value {
    let mut lines = yaml_lines(src);
    let mut i = 0;
    let value = parse_block(&mut lines, &mut i, 0);
    assert_eq!(i, lines.len(), "unparsed template from line: {}", lines.get(i).map_or("", |l| l.text));
    value
}

pub(crate) fn template() -> Value {
    parse_yaml(TEMPLATE)
}

pub(crate) fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    let r = &t["Resources"][name];
    assert!(r.is_object(), "no resource {name} in infra/template.yaml");
    r
}

pub(crate) fn resources_of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(n, r)| (n.as_str(), r))
        .collect()
}

/// `!Ref Name` → `Name`.
fn ref_target(v: &Value) -> &str {
    v.as_str().and_then(|s| s.strip_prefix("!Ref ")).unwrap_or_else(|| panic!("expected !Ref, got {v}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("expected a list, got {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

/// A parameter's default, as CloudFormation passes it (a string).
fn parameter_default<'a>(t: &'a Value, name: &str) -> &'a str {
    t["Parameters"][name]["Default"].as_str().unwrap_or_else(|| panic!("parameter {name} has no default"))
}

/// Evaluates a condition expression (`!Equals`, `!Not`, `!And`, `!Or`, `!Condition`, `!Ref`) with
/// every parameter at its default.
fn evaluate(t: &Value, expr: &str) -> Value {
    evaluate_with(t, expr, &[])
}

/// A parameter's value: from `params` when given there, else its default.
fn parameter<'a>(t: &'a Value, params: &[(&'a str, &'a str)], name: &str) -> &'a str {
    params.iter().find(|(n, _)| *n == name).map_or_else(|| parameter_default(t, name), |(_, v)| v)
}

/// [`evaluate`] with the parameters in `params` set, the others at their default.
fn evaluate_with(t: &Value, expr: &str, params: &[(&str, &str)]) -> Value {
    let evaluate = |t: &Value, e: &str| evaluate_with(t, e, params);
    let condition = |t: &Value, name: &str| {
        evaluate_with(t, t["Conditions"][name].as_str().unwrap_or_else(|| panic!("no condition {name}")), params)
    };
    let expr = expr.trim();
    let (tag, arg) = expr.split_once(' ').unwrap_or((expr, ""));
    let list = || match scalar(arg) {
        Value::Array(items) => items.into_iter().map(|v| v.as_str().unwrap().to_owned()).collect::<Vec<_>>(),
        other => panic!("{tag} expects a list, got {other}"),
    };
    let truth = |v: Value| v.as_bool().unwrap_or_else(|| panic!("not a condition: {v}"));
    match tag {
        "!Ref" => Value::String(parameter(t, params, arg).to_owned()),
        "!Equals" => {
            let args = list();
            Value::Bool(evaluate(t, &args[0]) == evaluate(t, &args[1]))
        }
        "!Not" => Value::Bool(!truth(evaluate(t, &list()[0]))),
        "!And" => Value::Bool(list().iter().all(|c| truth(evaluate(t, c)))),
        "!Or" => Value::Bool(list().iter().any(|c| truth(evaluate(t, c)))),
        "!Condition" => condition(t, arg),
        _ if tag.starts_with('!') => panic!("cannot evaluate {expr}"),
        _ => scalar(expr),
    }
}

fn condition(t: &Value, name: &str) -> Value {
    let expr = t["Conditions"][name].as_str().unwrap_or_else(|| panic!("no condition {name}"));
    evaluate(t, expr)
}

#[test]
fn the_yaml_reader_reads_the_subset_the_template_uses() {
    let v = parse_yaml(
        "a: 1 # note\nb:\n  - x\n  - k: 'it''s'\n    l: [p, !Ref Q, \"r, s\"]\nc:\n- !If\n  - C\n  - d: e\nf: {\"g\": [\"h\"]}\ni: >-\n  one\n  two\nj: !Sub |\n  {\"k\":\n    \"${L}\"}\n",
    );
    assert_eq!(
        v,
        json!({"a": "1", "b": ["x", {"k": "it's", "l": ["p", "!Ref Q", "r, s"]}], "c": [{"!If": ["C", {"d": "e"}]}],
               "f": {"g": ["h"]}, "i": "one two", "j": "!Sub {\"k\":\n\"${L}\"}"})
    );
}

// ---------------------------------------------------------------------------------------------
// The role
// ---------------------------------------------------------------------------------------------

pub(crate) fn role_statements(t: &Value) -> Vec<&Value> {
    let policies = resource(t, "FunctionRole")["Properties"]["Policies"].as_array().unwrap();
    policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .flat_map(|s| match s.get("!If") {
            // [condition, statement when true, statement when false]
            Some(branches) => branches.as_array().unwrap()[1..].iter().filter(|b| b.is_object()).collect(),
            None => vec![s],
        })
        .collect()
}

pub(crate) fn actions(statement: &Value) -> Vec<&str> {
    match &statement["Action"] {
        Value::String(a) => vec![a.as_str()],
        v => strings(v),
    }
}

/// The `!If` statement granting `iam:UntagUser`: (condition name, statement).
fn untag_statement(t: &Value) -> (&str, &Value) {
    let policies = resource(t, "FunctionRole")["Properties"]["Policies"].as_array().unwrap();
    let conditional = policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter_map(|s| s.get("!If"))
        .find(|branches| branches[1].is_object() && actions(&branches[1]).contains(&"iam:UntagUser"))
        .expect("iam:UntagUser is granted inside an !If");
    (conditional[0].as_str().unwrap(), &conditional[1])
}

#[test]
fn untag_is_limited_to_the_exception_tag_and_to_remediation() {
    let t = template();
    let (condition_name, statement) = untag_statement(&t);
    assert_eq!(condition_name, "RemediationEnabled");
    assert_eq!(condition(&t, condition_name), json!(false), "remediation is off by default");
    assert_eq!(actions(statement), ["iam:UntagUser"]);
    let every_untag: Vec<&Value> =
        role_statements(&t).into_iter().filter(|s| actions(s).contains(&"iam:UntagUser")).collect();
    assert_eq!(every_untag.len(), 2, "UntagUser is granted only in the conditional statements");
    // The other one removes an unapproved rotation opt-in: that tag key alone, only with rotation on.
    let (condition_name, optin) = conditional_statement(&t, "RemoveUnapprovedRotationOptIns");
    assert_eq!(condition_name, "RotationEnabled");
    let rotation_key = iam_sentinel::config::Rotation::default().tag_key;
    assert_eq!(optin["Condition"], json!({"ForAllValues:StringEqualsIgnoreCase": {"aws:TagKeys": [rotation_key]}}));
    let conditions = statement["Condition"].as_object().unwrap();
    assert_eq!(conditions.len(), 1, "{conditions:?}");
    let (operator, keys) = conditions.iter().next().unwrap();
    assert!(operator.starts_with("ForAllValues:"), "every removed key must be allowed, not just one: {operator}");
    assert_eq!(keys["aws:TagKeys"], json!(["!Ref ExceptionTagKey"]));
}

/// Whether `value` satisfies `operator` against one of `allowed` (IAM string operators).
fn string_condition(operator: &str, allowed: &[String], value: &str) -> bool {
    allowed.iter().any(|a| match operator {
        "StringEquals" => a == value,
        "StringEqualsIgnoreCase" => a.to_lowercase() == value.to_lowercase(),
        _ => panic!("no evaluator for condition operator {operator}: extend the test"),
    })
}

/// Whether the remediation statement allows `UntagUser` removing exactly `tag_keys`.
fn untag_allowed(t: &Value, tag_keys: &[&str]) -> bool {
    let (_, statement) = untag_statement(t);
    statement["Condition"].as_object().unwrap().iter().all(|(operator, keys)| {
        let (set, op) = operator.split_once(':').expect("a multivalued operator for aws:TagKeys");
        let allowed: Vec<String> = strings(&keys["aws:TagKeys"])
            .into_iter()
            .map(|k| k.strip_prefix("!Ref ").map_or_else(|| k.to_owned(), |p| parameter_default(t, p).to_owned()))
            .collect();
        match set {
            "ForAllValues" => tag_keys.iter().all(|k| string_condition(op, &allowed, k)),
            "ForAnyValue" => tag_keys.iter().any(|k| string_condition(op, &allowed, k)),
            _ => panic!("unexpected set operator {set}"),
        }
    })
}

#[test]
fn untag_allows_every_spelling_of_the_tag_key_the_checks_remediate() {
    let t = template();
    let configured = parameter_default(&t, "ExceptionTagKey");
    for spelling in
        ["AccessException", "accessexception", "ACCESSEXCEPTION", "aCcEsSeXcEpTiOn", "AccessExceptions", "Access"]
    {
        let user = UserSnapshot {
            created: None,
            name: "u".into(),
            arn: "arn:aws:iam::123456789012:user/u".into(),
            tags: vec![Tag::new(spelling, "True")],
            keys: vec![],
            password_enabled: false,
            password_last_used: None,
            password_set: None,
            mfa_active: false,
            policies: None,
        };
        let remediated = user.tag(configured).is_some();
        if remediated {
            assert!(untag_allowed(&t, &[spelling]), "the checks remove tag key {spelling:?} but the role denies it");
        } else {
            assert!(
                !untag_allowed(&t, &[spelling]),
                "the role may remove tag key {spelling:?}, which is not the exception tag"
            );
        }
    }
    assert!(!untag_allowed(&t, &["AccessException", "Owner"]), "a request removing another tag too is denied");
}

#[test]
fn update_access_key_is_granted_alone_and_only_when_deactivation_is_true() {
    let t = template();
    let policies = resource(&t, "FunctionRole")["Properties"]["Policies"].as_array().unwrap();
    let conditional: Vec<&Value> = policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter_map(|s| s.get("!If"))
        .filter(|branches| branches[1].is_object() && actions(&branches[1]).contains(&"iam:UpdateAccessKey"))
        .collect();
    let stale = conditional
        .iter()
        .find(|branches| branches[0] == json!("StaleKeyDeactivationEnabled"))
        .expect("a statement conditional on StaleKeyDeactivationEnabled grants UpdateAccessKey");
    let (condition_name, statement) = (stale[0].as_str().unwrap(), &stale[1]);
    assert_eq!(condition_name, "StaleKeyDeactivationEnabled");
    assert_eq!(t["Conditions"][condition_name], json!("!Equals [!Ref DeactivateStaleKeys, \"true\"]"));
    assert_eq!(condition(&t, condition_name), json!(false), "off by default");
    assert_eq!(parameter_default(&t, "DeactivateStaleKeys"), "false");
    // dry-run must not grant it: only "true" does.
    assert_eq!(strings(&t["Parameters"]["DeactivateStaleKeys"]["AllowedValues"]), ["false", "dry-run", "true"]);
    assert_eq!(actions(statement), ["iam:UpdateAccessKey"], "UpdateAccessKey alone");
    assert_eq!(statement["Resource"], json!("!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*"));
    // Never unconditionally: every grant of it sits inside an `!If` on an opt-in parameter.
    let unconditional = policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter(|s| s.get("!If").is_none())
        .any(|s| actions(s).contains(&"iam:UpdateAccessKey"));
    assert!(!unconditional, "UpdateAccessKey is granted only when a parameter enables it");
    assert!(!role_statements(&t).iter().any(|s| actions(s).contains(&"iam:TagUser")), "undo runs as the engineer");
    let env = &resource(&t, "Function")["Properties"]["Environment"]["Variables"];
    assert_eq!(env["DEACTIVATE_STALE_KEYS"], json!("!Ref DeactivateStaleKeys"));
    assert_eq!(env["STALE_GRACE_DAYS"], json!("!Ref StaleGraceDays"));
    assert_eq!(env["STALE_KEY_EXEMPT_TAG"], json!("!Ref StaleKeyExemptTag"));
    assert_eq!(parameter_default(&t, "StaleKeyExemptTag"), "iam-sentinel:keep-keys");
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

fn function_events(t: &Value) -> &Map<String, Value> {
    resource(t, "Function")["Properties"]["Events"].as_object().unwrap()
}

#[test]
fn the_rule_forwards_exactly_the_events_the_function_handles() {
    let t = template();
    let pattern = &function_events(&t)["IamChanges"]["Properties"]["Pattern"];
    assert_eq!(strings(&pattern["source"]), ["aws.iam"]);
    assert_eq!(strings(&pattern["detail-type"]), [iam_sentinel::event::CLOUDTRAIL_DETAIL_TYPE]);
    let names = strings(&pattern["detail"]["eventName"]);
    assert!(
        !names.contains(&"DeleteVirtualMFADevice"),
        "IAM deletes only unassigned devices: no user's MFA state changes"
    );
    // DeleteVirtualMFADevice is left out whichever way the constant lists it.
    let handled: Vec<&str> =
        iam_sentinel::event::supported_event_names().filter(|n| *n != "DeleteVirtualMFADevice").collect();
    assert_eq!(names, handled);
}

#[test]
fn a_rule_forwards_root_console_sign_ins() {
    let t = template();
    let sign_in: Vec<&Value> = function_events(&t)
        .values()
        .filter(|e| e["Type"] == "EventBridgeRule" && e["Properties"]["Pattern"]["source"] == json!(["aws.signin"]))
        .collect();
    assert_eq!(sign_in.len(), 1, "one aws.signin rule");
    let properties = &sign_in[0]["Properties"];
    let pattern = &properties["Pattern"];
    assert_eq!(pattern["detail-type"], json!(["AWS Console Sign In via CloudTrail"]));
    assert_eq!(pattern["detail"]["eventName"], json!(["ConsoleLogin"]));
    assert_eq!(pattern["detail"]["userIdentity"]["type"], json!(["Root"]));
    assert_eq!(properties["DeadLetterConfig"]["Arn"], "!GetAtt DeadLetterQueue.Arn");
}

// ---------------------------------------------------------------------------------------------
// Deployability
// ---------------------------------------------------------------------------------------------

#[test]
fn by_default_no_concurrency_is_reserved() {
    let t = template();
    let reserved = resource(&t, "Function")["Properties"]["ReservedConcurrentExecutions"].as_str();
    let Some(reserved) = reserved else { return };
    let Some(if_args) = reserved.strip_prefix("!If ") else {
        panic!("ReservedConcurrentExecutions is set unconditionally: {reserved}");
    };
    let Value::Array(args) = scalar(if_args) else { panic!("!If takes a list: {reserved}") };
    assert_eq!(args[2], "!Ref AWS::NoValue", "the false branch reserves nothing");
    assert_eq!(condition(&t, args[0].as_str().unwrap()), json!(false), "with the defaults no concurrency is reserved");
}

#[test]
fn resource_names_derive_from_the_stack_name() {
    let t = template();
    let named = [
        ("AWS::Serverless::Function", "FunctionName"),
        ("AWS::Lambda::Function", "FunctionName"),
        ("AWS::SNS::Topic", "TopicName"),
        ("AWS::SQS::Queue", "QueueName"),
        ("AWS::SecretsManager::Secret", "Name"),
        ("AWS::Logs::LogGroup", "LogGroupName"),
        ("AWS::CloudWatch::Alarm", "AlarmName"),
        ("AWS::IAM::Role", "RoleName"),
    ];
    for (kind, property) in named {
        for (name, r) in resources_of_type(&t, kind) {
            match &r["Properties"][property] {
                Value::Null => {}
                Value::String(s) => assert!(
                    s.starts_with("!Sub ") && s.contains("${AWS::StackName}"),
                    "{name}.{property} is fixed ({s}): a second stack in the account would collide"
                ),
                other => panic!("{name}.{property}: {other}"),
            }
        }
    }
    // Data that a rename replaces survives the replacement.
    for name in ["ApprovalsSecret", "FunctionLogGroup"] {
        assert_eq!(resource(&t, name)["UpdateReplacePolicy"], "Retain", "{name}");
        assert_eq!(resource(&t, name)["DeletionPolicy"], "Retain", "{name}");
    }
    // The log group is still the function's.
    assert_eq!(resource(&t, "Function")["Properties"]["LoggingConfig"]["LogGroup"], "!Ref FunctionLogGroup");
}

#[test]
fn the_key_grants_no_service_whose_conditions_are_in_doubt() {
    let t = template();
    let statements = resource(&t, "FindingsKey")["Properties"]["KeyPolicy"]["Statement"].as_array().unwrap();
    let services: Vec<&str> = statements
        .iter()
        .flat_map(|s| match &s["Principal"]["Service"] {
            Value::Null => vec![],
            Value::String(one) => vec![one.as_str()],
            list => strings(list),
        })
        .collect();
    assert!(!services.contains(&"events.amazonaws.com"), "{services:?}");
    assert!(!services.contains(&"sns.amazonaws.com"), "{services:?}");
    // CloudWatch alarms publish to an encrypted topic: they need the key.
    assert!(services.contains(&"cloudwatch.amazonaws.com"), "{services:?}");

    let queue = &resource(&t, "DeadLetterQueue")["Properties"];
    assert!(queue["KmsMasterKeyId"].is_null(), "the dead-letter queue uses SQS-managed encryption, not the key");
    assert_eq!(queue["SqsManagedSseEnabled"], "true");
    for (name, topic) in resources_of_type(&t, "AWS::SNS::Topic") {
        assert_eq!(topic["Properties"]["KmsMasterKeyId"], "!Ref FindingsKey", "{name} is encrypted");
    }
}

// ---------------------------------------------------------------------------------------------
// Alarms reach the mailbox: the template's topics and e-mail subscriptions, rebuilt on moto with
// SQS queues standing in for the mailboxes, so moto applies the real filter policies.
// ---------------------------------------------------------------------------------------------

const ALARM_MESSAGE: &str = r#"{"AlarmName":"stack-FunctionErrorsAlarm-ABC","AlarmDescription":"iam-sentinel invocations failed","AWSAccountId":"123456789012","NewStateValue":"ALARM","NewStateReason":"Threshold Crossed: 1 datapoint [1.0] was greater than the threshold (0.0).","StateChangeTime":"2026-05-07T10:00:00.000+0000","Region":"US East (N. Virginia)","OldStateValue":"OK","Trigger":{"MetricName":"Errors","Namespace":"AWS/Lambda","Statistic":"SUM","Dimensions":[{"name":"FunctionName","value":"stack-Function-XYZ"}],"Period":300,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0.0}}"#;

struct Mailbox {
    subscription: String,
    queue_url: String,
}

async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let out = sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).send().await.unwrap();
    out.messages.unwrap_or_default().into_iter().map(|m| m.body.unwrap_or_default()).collect()
}

#[tokio::test]
async fn alarms_reach_the_mailbox_and_low_findings_do_not() {
    let t = template();
    let moto = crate::common::Moto::start();
    let sdk = moto.sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let mut topic_arns = std::collections::HashMap::new();
    for (name, _) in resources_of_type(&t, "AWS::SNS::Topic") {
        let arn = sns.create_topic().name(name).send().await.unwrap().topic_arn.unwrap();
        topic_arns.insert(name.to_owned(), arn);
    }
    let mut mailboxes = Vec::new();
    for (name, sub) in resources_of_type(&t, "AWS::SNS::Subscription") {
        let p = &sub["Properties"];
        if p["Protocol"] != "email" {
            continue;
        }
        let topic = ref_target(&p["TopicArn"]);
        let queue_url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap();
        let queue_arn = format!("arn:aws:sqs:us-east-1:{}:{name}", crate::common::ACCOUNT);
        let mut req = sns.subscribe().topic_arn(&topic_arns[topic]).protocol("sqs").endpoint(queue_arn);
        if !p["FilterPolicy"].is_null() {
            assert!(p["FilterPolicy"].is_object(), "{name}: FilterPolicy is a JSON mapping");
            assert!(p["FilterPolicyScope"].is_null(), "{name}: the test assumes the MessageAttributes scope");
            req = req.attributes("FilterPolicy", p["FilterPolicy"].to_string());
        }
        req.send().await.unwrap();
        mailboxes.push((topic.to_owned(), Mailbox { subscription: name.to_owned(), queue_url }));
    }

    // Each alarm, as CloudWatch sends it (no message attributes), reaches some mailbox.
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 2, "function-errors and dead-letter alarms");
    for (alarm, r) in alarms {
        let targets = r["Properties"]["AlarmActions"].as_array().unwrap();
        assert!(!targets.is_empty(), "{alarm} notifies nobody");
        for target in targets {
            let topic = ref_target(target);
            sns.publish().topic_arn(&topic_arns[topic]).subject("ALARM").message(ALARM_MESSAGE).send().await.unwrap();
            let mut reached = Vec::new();
            for (_, mailbox) in mailboxes.iter().filter(|(t, _)| t == topic) {
                if drain(&sqs, &mailbox.queue_url).await.iter().any(|b| b.contains("FunctionErrorsAlarm")) {
                    reached.push(mailbox.subscription.clone());
                }
            }
            assert!(!reached.is_empty(), "{alarm} → {topic}: no e-mail subscriber receives the alarm");
        }
    }

    // The findings mailbox still filters: high arrives, low does not.
    let findings_topic =
        ref_target(&resource(&t, "Function")["Properties"]["Environment"]["Variables"]["FINDINGS_TOPIC_ARN"]);
    let findings_mailboxes: Vec<&Mailbox> =
        mailboxes.iter().filter(|(t, _)| t == findings_topic).map(|(_, m)| m).collect();
    assert!(!findings_mailboxes.is_empty(), "an e-mail subscription on {findings_topic}");
    for (severity, expected) in [("low", false), ("high", true)] {
        let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(severity)
            .build()
            .unwrap();
        sns.publish()
            .topic_arn(&topic_arns[findings_topic])
            .message(format!(r#"{{"check":"required-tag-missing","severity":"{severity}"}}"#))
            .message_attributes("severity", attribute)
            .send()
            .await
            .unwrap();
        for mailbox in &findings_mailboxes {
            let got = drain(&sqs, &mailbox.queue_url).await.iter().any(|b| b.contains("required-tag-missing"));
            assert_eq!(got, expected, "{}: a {severity} finding", mailbox.subscription);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RequireMFA.json
// ---------------------------------------------------------------------------------------------

/// Everything a user may do before signing in with MFA: the exemptions the MFA check accepts,
/// so the published policy and the check that judges policies agree (infra/policies/README.md
/// lists the same).
const BEFORE_MFA: &[&str] = iam_sentinel::checks::policy::MFA_SELF_SERVICE;

fn as_list(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        v => strings(v),
    }
}

#[test]
fn a_new_user_can_set_a_password_and_enrol_mfa_and_nothing_more() {
    let policy: Value = serde_json::from_str(REQUIRE_MFA).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let deny: Vec<&Value> = statements.iter().filter(|s| s["Effect"] == "Deny").collect();
    assert_eq!(deny.len(), 1);
    let deny = deny[0];
    assert_eq!(deny["Condition"], json!({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}));
    assert_eq!(deny["Resource"], "*");
    let exempt: BTreeSet<&str> = as_list(&deny["NotAction"]).into_iter().collect();
    assert!(exempt.contains("iam:ChangePassword") && exempt.contains("iam:GetAccountPasswordPolicy"), "{exempt:?}");
    let documented: BTreeSet<&str> = BEFORE_MFA.iter().copied().collect();
    assert_eq!(exempt, documented, "the deny exempts exactly the documented actions");
    for action in BEFORE_MFA {
        assert!(
            infra_policies_readme().contains(&format!("`{action}`")),
            "{action} is not documented in infra/policies/README.md"
        );
    }

    let allows: Vec<&Value> = statements.iter().filter(|s| s["Effect"] == "Allow").collect();
    let own_user = "arn:aws:iam::*:user/${aws:username}";
    let change_password: Vec<&&Value> =
        allows.iter().filter(|s| as_list(&s["Action"]).contains(&"iam:ChangePassword")).collect();
    assert!(!change_password.is_empty(), "an Allow for iam:ChangePassword");
    for s in &change_password {
        assert_eq!(as_list(&s["Resource"]), [own_user], "ChangePassword only on the user's own user");
    }
    // Every allow is for an exempted action, and user-level actions only on the user's own user.
    for s in &allows {
        for action in as_list(&s["Action"]) {
            assert!(documented.contains(action), "{action} is allowed but denied before MFA: move or document it");
        }
        for r in as_list(&s["Resource"]) {
            assert!(!r.contains(":user/") || r == own_user, "{r}: user resources are the user's own");
        }
    }
}

fn infra_policies_readme() -> &'static str {
    include_str!("../../infra/policies/README.md")
}

// ---------------------------------------------------------------------------------------------
// Break-glass and the approvals registry
// ---------------------------------------------------------------------------------------------

/// `!Split [",", !Ref Param]` → `Param`.
fn split_parameter(v: &Value) -> &str {
    v.as_str()
        .and_then(|s| s.strip_prefix("!Split [\",\", !Ref "))
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("expected !Split [\",\", !Ref PARAMETER], got {v}"))
}

pub(crate) fn rule_targets_function_with_retries_and_dead_letters(name: &str, rule: &Value) {
    let targets = rule["Properties"]["Targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{name}");
    let target = &targets[0];
    assert_eq!(target["Arn"], "!GetAtt Function.Arn", "{name}");
    assert_eq!(target["DeadLetterConfig"]["Arn"], "!GetAtt DeadLetterQueue.Arn", "{name}");
    assert_eq!(target["RetryPolicy"]["MaximumRetryAttempts"], "4", "{name}");
    let t = template();
    let source = format!("!GetAtt {name}.Arn");
    let permissions: Vec<&Value> = resources_of_type(&t, "AWS::Lambda::Permission")
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p["Properties"]["SourceArn"] == source.as_str())
        .collect();
    assert_eq!(permissions.len(), 1, "{name}: one invoke permission scoped to the rule");
    assert_eq!(permissions[0]["Properties"]["Principal"], "events.amazonaws.com");
    assert_eq!(permissions[0]["Condition"], rule["Condition"], "{name}: the permission exists with the rule");
}

#[test]
fn break_glass_roles_are_forwarded_only_when_configured_and_only_their_assumptions() {
    let t = template();
    let rule = resource(&t, "BreakGlassRoleRule");
    assert_eq!(rule["Type"], "AWS::Events::Rule");
    // AssumeRole is read-only: an ENABLED rule would never see it.
    assert_eq!(rule["Properties"]["State"], "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS");
    let when = rule["Condition"].as_str().unwrap();
    assert_eq!(condition(&t, when), json!(false), "no rule without break-glass roles");
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(pattern["source"], json!(["aws.sts"]));
    assert_eq!(pattern["detail-type"], json!([iam_sentinel::event::CLOUDTRAIL_DETAIL_TYPE]));
    assert_eq!(pattern["detail"]["eventName"], json!(["AssumeRole"]));
    assert_eq!(split_parameter(&pattern["detail"]["requestParameters"]["roleArn"]), "BreakGlassRoleArns");
    rule_targets_function_with_retries_and_dead_letters("BreakGlassRoleRule", rule);

    let env = &resource(&t, "Function")["Properties"]["Environment"]["Variables"];
    assert_eq!(env["BREAK_GLASS_ROLE_ARNS"], "!Ref BreakGlassRoleArns");
    assert_eq!(env["BREAK_GLASS_USERS"], "!Ref BreakGlassUsers");

    // GetRole only on the configured roles, and only when there are some.
    let policies = resource(&t, "FunctionRole")["Properties"]["Policies"].as_array().unwrap();
    let get_role = policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter_map(|s| s.get("!If"))
        .find(|b| b[1].is_object() && actions(&b[1]).contains(&"iam:GetRole"))
        .expect("iam:GetRole is granted inside an !If");
    assert_eq!(get_role[0], when);
    assert_eq!(actions(&get_role[1]), ["iam:GetRole"]);
    assert_eq!(split_parameter(&get_role[1]["Resource"]), "BreakGlassRoleArns");
}

#[test]
fn break_glass_user_sign_ins_are_forwarded_only_when_configured() {
    let t = template();
    let rule = resource(&t, "BreakGlassUserSignInRule");
    let when = rule["Condition"].as_str().unwrap();
    assert_eq!(condition(&t, when), json!(false));
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(pattern["source"], json!(["aws.signin"]));
    assert_eq!(pattern["detail-type"], json!([iam_sentinel::event::SIGN_IN_DETAIL_TYPE]));
    assert_eq!(pattern["detail"]["userIdentity"]["type"], json!(["IAMUser"]));
    assert_eq!(split_parameter(&pattern["detail"]["userIdentity"]["userName"]), "BreakGlassUsers");
    rule_targets_function_with_retries_and_dead_letters("BreakGlassUserSignInRule", rule);
}

#[test]
fn every_registry_write_the_function_judges_is_forwarded_and_denied_to_outsiders() {
    let t = template();
    let rule = resource(&t, "RegistryChangeRule");
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(pattern["source"], json!(["aws.secretsmanager"]));
    assert_eq!(strings(&pattern["detail"]["eventName"]), iam_sentinel::event::REGISTRY_WRITE_EVENT_NAMES);
    let secret = pattern["detail"]["requestParameters"]["secretId"].as_str().unwrap();
    assert!(
        secret.starts_with("!If [CreateApprovalsSecret,") && secret.contains("${AWS::StackName}/approvals"),
        "{secret}"
    );
    rule_targets_function_with_retries_and_dead_letters("RegistryChangeRule", rule);

    let policy = resource(&t, "ApprovalsSecretPolicy");
    assert_eq!(policy["Properties"]["SecretId"], "!Ref ApprovalsSecret");
    let protect = t["Conditions"][policy["Condition"].as_str().unwrap()].as_str().unwrap();
    assert!(protect.contains("!Condition CreateApprovalsSecret"), "only on the secret this stack creates: {protect}");
    let statements = policy["Properties"]["ResourcePolicy"]["Statement"].as_array().unwrap();
    assert!(statements.iter().all(|s| s["Effect"] == "Deny" && s["Principal"] == "*"), "denies only");
    for name in iam_sentinel::event::REGISTRY_WRITE_EVENT_NAMES {
        let action = format!("secretsmanager:{name}");
        let deny = statements
            .iter()
            .find(|s| !s["Action"].is_null() && actions(s).contains(&action.as_str()))
            .unwrap_or_else(|| panic!("{action} is not denied to outsiders"));
        let exempt = deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"].as_str().unwrap();
        assert!(exempt.contains("RegistryAdministratorArns"), "{action}: administrators keep it: {exempt}");
        let approvers_may = exempt.contains("ApproverPrincipals");
        assert_eq!(
            approvers_may,
            ["PutSecretValue", "UpdateSecret", "UpdateSecretVersionStage"].contains(name),
            "{action}"
        );
    }
    let function = statements
        .iter()
        .find(|s| s["Condition"]["ArnEquals"]["aws:PrincipalArn"] == "!GetAtt FunctionRole.Arn")
        .unwrap();
    assert_eq!(as_list(&function["NotAction"]), ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]);
}

/// The `!If` statement with `sid`: (condition name, statement).
fn conditional_statement<'a>(t: &'a Value, sid: &str) -> (&'a str, &'a Value) {
    let policies = resource(t, "FunctionRole")["Properties"]["Policies"].as_array().unwrap();
    let branches = policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter_map(|s| s.get("!If"))
        .find(|b| b[1]["Sid"] == sid)
        .unwrap_or_else(|| panic!("{sid} is granted inside an !If"));
    (branches[0].as_str().unwrap(), &branches[1])
}

#[test]
fn key_rotation_changes_only_opted_in_users_keys_and_only_when_enabled() {
    let t = template();
    let (condition, keys) = conditional_statement(&t, "RotateOptedInKeysOnly");
    assert_eq!(condition, "RotationEnabled");
    assert_eq!(actions(keys), ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"]);
    assert_eq!(keys["Condition"]["StringEquals"]["iam:ResourceTag/iam-sentinel:rotation"], "!Ref RotationTagValue");
    let (condition, secrets) = conditional_statement(&t, "WriteRotationSecrets");
    assert_eq!(condition, "RotationEnabled");
    assert!(secrets["Resource"].as_str().unwrap().ends_with(":secret:iam-sentinel/keys/*"), "{secrets}");
    // No other statement grants a key write.
    let writers: Vec<&Value> = role_statements(&t)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| actions(s).iter().any(|a| ["iam:CreateAccessKey", "iam:DeleteAccessKey"].contains(a)))
        .collect();
    assert_eq!(writers.len(), 1, "{writers:?}");
}

// ---------------------------------------------------------------------------------------------
// Organization mode: the central stack's additions, the member template, the state machine
// ---------------------------------------------------------------------------------------------

const MEMBER: &str = include_str!("../../infra/member.yaml");

/// The Organizations calls the function reacts to (SCPs and the accounts they apply to): the
/// rules must forward exactly the event parser's list.
const ORGANIZATIONS_EVENT_NAMES: &[&str] = iam_sentinel::event::ORGANIZATIONS_EVENT_NAMES;

/// The function's error types (`errorType` of a failed invocation) that another attempt would
/// not change: the state machine must not retry them.
const NOT_TRANSIENT: &[&str] = &[
    "MalformedEvent",
    "Misconfigured",
    "DeadlineExceeded",
    "RegistryUnavailable",
    "RemediationFailed",
    "FindingsIncomplete",
];

/// What a scan child retries: Lambda's transient errors and the function's failed AWS call.
const TRANSIENT: &[&str] =
    &["Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.SdkClientException", "AwsCallFailed"];

pub(crate) fn member_template() -> Value {
    parse_yaml(MEMBER)
}

/// Whether condition `name` holds only in organization mode (and so is false by default).
fn organization_only(t: &Value, name: &str) -> bool {
    let expr = t["Conditions"][name].as_str().unwrap_or_else(|| panic!("no condition {name}"));
    condition(t, name) == json!(false)
        && (name == "OrganizationModeEnabled" || expr.contains("!Condition OrganizationModeEnabled"))
}

/// The IAM calls the function handles, as every IAM rule lists them.
fn handled_iam_event_names() -> Vec<&'static str> {
    iam_sentinel::event::supported_event_names().filter(|n| *n != "DeleteVirtualMFADevice").collect()
}

#[test]
fn organization_mode_is_off_by_default_and_everything_it_adds_is_conditional() {
    let t = template();
    assert_eq!(parameter_default(&t, "OrganizationMode"), "false");
    assert_eq!(t["Conditions"]["OrganizationModeEnabled"], "!Equals [!Ref OrganizationMode, \"true\"]");
    assert_eq!(condition(&t, "OrganizationModeEnabled"), json!(false));

    // Any resource naming an organization-mode parameter or resource exists only in that mode,
    // except the function (its environment) and its role (statements inside an !If).
    let markers = [
        "OrganizationId",
        "OrganizationMode",
        "MemberRoleName",
        "MemberTemplateUrl",
        "MemberTargetOuIds",
        "MaxConcurrency",
        "StackSetCallAs",
        "ScpPolicy",
        "CentralEventBus",
        "OrganizationScan",
    ];
    let mut organization_resources = 0;
    for (name, r) in t["Resources"].as_object().unwrap() {
        let text = r.to_string();
        let organizational = name.starts_with("Organization")
            || name.starts_with("Central")
            || name.starts_with("Member")
            || markers.iter().any(|m| text.contains(m));
        if !organizational || name == "Function" || name == "FunctionRole" {
            continue;
        }
        organization_resources += 1;
        let when = r["Condition"].as_str().unwrap_or_else(|| panic!("{name} exists in single-account mode"));
        assert!(organization_only(&t, when), "{name}: condition {when} is not organization mode only");
    }
    assert!(organization_resources >= 15, "{organization_resources}");
    for kind in ["AWS::Events::EventBus", "AWS::CloudFormation::StackSet", "AWS::StepFunctions::StateMachine"] {
        assert_eq!(resources_of_type(&t, kind).len(), 1, "{kind}");
    }

    // The role: the two organization statements only in organization mode.
    for sid in ["AssumeMemberRoles", "ReadOrganization"] {
        let (when, _) = conditional_statement(&t, sid);
        assert_eq!(when, "OrganizationModeEnabled", "{sid}");
    }
    let unconditional = resource(&t, "FunctionRole")["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter(|s| s.get("!If").is_none())
        .flat_map(actions)
        .filter(|a| a.starts_with("sts:") || a.starts_with("organizations:"))
        .count();
    assert_eq!(unconditional, 0, "no sts or organizations grant outside organization mode");

    // The function: three variables, and its own schedule only in single-account mode.
    let function = &resource(&t, "Function")["Properties"];
    let env = &function["Environment"]["Variables"];
    assert_eq!(env["ORGANIZATION_MODE"], "!Ref OrganizationMode");
    assert_eq!(env["MEMBER_ROLE_NAME"], "!Ref MemberRoleName");
    assert_eq!(env["SCP_POLICY"], "!Ref ScpPolicy");
    assert_eq!(parameter_default(&t, "MemberRoleName"), "iam-sentinel-member");
    assert_eq!(parameter_default(&t, "ScpPolicy"), "RestrictIAMUserAccessWithExceptions");
    let daily = &function_events(&t)["DailyScan"]["Properties"];
    assert_eq!(daily["State"], "!If [OrganizationModeEnabled, DISABLED, ENABLED]");
    let organization_daily = &resource(&t, "OrganizationScanSchedule")["Properties"];
    assert_eq!(organization_daily["ScheduleExpression"], daily["Schedule"], "one schedule for both modes");
}

#[test]
fn organization_mode_refuses_to_deploy_without_its_parameters_or_with_key_changes() {
    let t = template();
    let rule = &t["Rules"]["OrganizationModeParameters"];
    assert_eq!(rule["RuleCondition"], "!Equals [!Ref OrganizationMode, \"true\"]");
    let asserted: Vec<&str> =
        rule["Assertions"].as_array().unwrap().iter().map(|a| a["Assert"].as_str().unwrap()).collect();
    for required in [
        "!Not [!Equals [!Ref OrganizationId, \"\"]]",
        "!Not [!Equals [!Ref MemberTemplateUrl, \"\"]]",
        "!Not [!Contains [!Ref MemberTargetOuIds, \"\"]]",
        "!Not [!Equals [!Ref RotateKeys, \"true\"]]",
        "!Not [!Equals [!Ref DeactivateStaleKeys, \"true\"]]",
        "!Not [!Equals [!Ref SecurityHub, \"true\"]]",
    ] {
        assert!(asserted.contains(&required), "missing assertion {required}: {asserted:?}");
    }
    assert_eq!(t["Parameters"]["OrganizationId"]["AllowedPattern"], "^$|^o-[a-z0-9]{10,32}$");
}

/// The function role's `sts:AssumeRole` statement: member roles of this organization only.
#[test]
fn the_function_assumes_only_member_roles_of_its_organization() {
    let t = template();
    let (_, assume) = conditional_statement(&t, "AssumeMemberRoles");
    assert_eq!(actions(assume), ["sts:AssumeRole"]);
    assert_eq!(assume["Resource"], "!Sub arn:${AWS::Partition}:iam::*:role/${MemberRoleName}");
    assert_eq!(assume["Condition"], json!({"StringEquals": {"aws:ResourceOrgID": "!Ref OrganizationId"}}));
    let (_, read) = conditional_statement(&t, "ReadOrganization");
    let mut granted = actions(read);
    granted.sort_unstable();
    assert_eq!(
        granted,
        [
            "organizations:DescribeAccount",
            "organizations:DescribeOrganization",
            "organizations:DescribeOrganizationalUnit",
            "organizations:DescribePolicy",
            "organizations:ListAccounts",
            "organizations:ListParents",
            "organizations:ListPoliciesForTarget",
            "organizations:ListRoots",
        ]
    );
}

#[test]
fn the_central_bus_accepts_events_only_from_the_organization() {
    let t = template();
    let bus = resource(&t, "CentralEventBus");
    assert!(bus["Properties"]["Policy"].is_null(), "one policy: CentralEventBusPolicy");
    let policy = &resource(&t, "CentralEventBusPolicy")["Properties"];
    assert_eq!(policy["EventBusName"], "!Ref CentralEventBus");
    let statement = &policy["Statement"];
    assert!(statement.is_object(), "one statement: {statement}");
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(actions(statement), ["events:PutEvents"]);
    assert_eq!(statement["Resource"], "!GetAtt CentralEventBus.Arn");
    // Principal "*" is safe only with the organization condition, and nothing else loosening it.
    assert_eq!(statement["Condition"], json!({"StringEquals": {"aws:PrincipalOrgID": "!Ref OrganizationId"}}));
    let buses: Vec<&str> = resources_of_type(&t, "AWS::Events::EventBusPolicy").into_iter().map(|(n, _)| n).collect();
    assert_eq!(buses, ["CentralEventBusPolicy"]);
}

/// The event pattern of the SAM event `name` on the default bus.
fn default_bus_pattern<'a>(t: &'a Value, name: &str) -> &'a Value {
    &function_events(t)[name]["Properties"]["Pattern"]
}

#[test]
fn the_central_bus_forwards_what_the_default_bus_forwards_and_organizations_changes() {
    let t = template();
    let on_central_bus = |name: &str| {
        let rule = resource(&t, name);
        assert_eq!(rule["Properties"]["EventBusName"], "!Ref CentralEventBus", "{name}");
        assert!(organization_only(&t, rule["Condition"].as_str().unwrap()), "{name}");
        rule_targets_function_with_retries_and_dead_letters(name, rule);
        rule["Properties"]["EventPattern"].clone()
    };
    let iam = on_central_bus("OrganizationIamChangesRule");
    assert_eq!(&iam, default_bus_pattern(&t, "IamChanges"));
    assert_eq!(strings(&iam["detail"]["eventName"]), handled_iam_event_names());
    assert_eq!(&on_central_bus("OrganizationRootSignInRule"), default_bus_pattern(&t, "RootSignIn"));
    for (central, default) in [
        ("OrganizationBreakGlassRoleRule", "BreakGlassRoleRule"),
        ("OrganizationBreakGlassUserSignInRule", "BreakGlassUserSignInRule"),
    ] {
        assert_eq!(on_central_bus(central), resource(&t, default)["Properties"]["EventPattern"], "{central}");
        assert_eq!(resource(&t, central)["Properties"]["State"], resource(&t, default)["Properties"]["State"]);
        let when = resource(&t, central)["Condition"].as_str().unwrap();
        let default_when = resource(&t, default)["Condition"].as_str().unwrap();
        assert!(t["Conditions"][when].as_str().unwrap().contains(&format!("!Condition {default_when}")), "{central}");
    }

    let organizations = on_central_bus("OrganizationsChangesRule");
    assert_eq!(organizations["source"], json!(["aws.organizations"]));
    assert_eq!(organizations["detail-type"], json!([iam_sentinel::event::CLOUDTRAIL_DETAIL_TYPE]));
    assert_eq!(organizations["detail"]["eventSource"], json!(["organizations.amazonaws.com"]));
    assert_eq!(strings(&organizations["detail"]["eventName"]), ORGANIZATIONS_EVENT_NAMES);
    // A stack in the management account receives them on its default bus.
    let local = resource(&t, "OrganizationsChangesLocalRule");
    assert!(local["Properties"]["EventBusName"].is_null());
    assert_eq!(local["Properties"]["EventPattern"], organizations);
    rule_targets_function_with_retries_and_dead_letters("OrganizationsChangesLocalRule", local);
}

#[test]
fn the_member_stack_set_is_service_managed_auto_deployed_and_fed_from_the_central_stack() {
    let t = template();
    let member = member_template();
    let stack_set = &resource(&t, "MemberStackSet")["Properties"];
    assert_eq!(stack_set["PermissionModel"], "SERVICE_MANAGED");
    assert_eq!(stack_set["AutoDeployment"]["Enabled"], "true");
    assert_eq!(stack_set["CallAs"], "!Ref StackSetCallAs");
    assert_eq!(strings(&t["Parameters"]["StackSetCallAs"]["AllowedValues"]), ["SELF", "DELEGATED_ADMIN"]);
    assert_eq!(stack_set["Capabilities"], json!(["CAPABILITY_NAMED_IAM"]));
    assert_eq!(stack_set["TemplateURL"], "!Ref MemberTemplateUrl");
    let groups = stack_set["StackInstancesGroup"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["Regions"], json!(["us-east-1"]), "IAM's CloudTrail events reach EventBridge there only");
    assert_eq!(groups[0]["DeploymentTargets"]["OrganizationalUnitIds"], "!Ref MemberTargetOuIds");

    let passed: Map<String, Value> = stack_set["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["ParameterKey"].as_str().unwrap().to_owned(), p["ParameterValue"].clone()))
        .collect();
    let declared = member["Parameters"].as_object().unwrap();
    for key in passed.keys() {
        assert!(declared.contains_key(key), "the StackSet passes {key}, which infra/member.yaml does not declare");
    }
    for (key, p) in declared {
        assert!(p.get("Default").is_some() || passed.contains_key(key), "{key} is required and not passed");
    }
    assert_eq!(passed["CentralFunctionRoleArn"], "!GetAtt FunctionRole.Arn");
    assert_eq!(passed["CentralEventBusArn"], "!GetAtt CentralEventBus.Arn");
    for same in ["MemberRoleName", "ExceptionTagKey", "AutoRemediate", "BreakGlassRoleArns", "BreakGlassUsers"] {
        assert_eq!(passed[same], format!("!Ref {same}").as_str(), "{same}");
        assert_eq!(
            declared[same]["Default"], t["Parameters"][same]["Default"],
            "{same}: one default in both templates"
        );
    }
}

/// The member role's statements, `!If` branches included: (condition or "", statement).
pub(crate) fn member_role_statements(member: &Value) -> Vec<(&str, &Value)> {
    let role = &member["Resources"]["MemberRole"]["Properties"];
    role["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .map(|s| match s.get("!If") {
            Some(branches) => (branches[0].as_str().unwrap(), &branches[1]),
            None => ("", s),
        })
        .collect()
}

/// IAM writes the function role may hold that the member role never does: organization mode
/// refuses key rotation and stale-key deactivation.
pub(crate) const KEY_WRITES: &[&str] = &["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"];

#[test]
fn the_member_role_trusts_only_the_function_role_and_writes_only_the_exception_tag() {
    let member = member_template();
    let role = &member["Resources"]["MemberRole"]["Properties"];
    assert_eq!(role["RoleName"], "!Ref MemberRoleName");
    let trust = role["AssumeRolePolicyDocument"]["Statement"].as_array().unwrap();
    assert_eq!(trust.len(), 1);
    assert_eq!(trust[0]["Effect"], "Allow");
    assert_eq!(trust[0]["Principal"], json!({"AWS": "!Ref CentralFunctionRoleArn"}));
    assert_eq!(actions(&trust[0]), ["sts:AssumeRole"]);

    let statements = member_role_statements(&member);
    for (_, s) in &statements {
        assert_eq!(s["Effect"], "Allow");
        for action in actions(s) {
            let read = ["iam:Get", "iam:List", "iam:GenerateCredentialReport"].iter().any(|p| action.starts_with(p));
            assert!(read || action == "iam:UntagUser", "{action}: the member role only reads IAM and untags");
        }
    }
    let untag: Vec<&(&str, &Value)> =
        statements.iter().filter(|(_, s)| actions(s).contains(&"iam:UntagUser")).collect();
    assert_eq!(untag.len(), 1);
    let (when, statement) = untag[0];
    assert_eq!(*when, "RemediationEnabled");
    assert_eq!(member["Conditions"]["RemediationEnabled"], "!Equals [!Ref AutoRemediate, \"true\"]");
    assert_eq!(actions(statement), ["iam:UntagUser"]);
    assert_eq!(
        statement["Condition"],
        json!({"ForAllValues:StringEqualsIgnoreCase": {"aws:TagKeys": ["!Ref ExceptionTagKey"]}}),
        "the same condition as the function role's untag"
    );
    assert_eq!(statement["Condition"], untag_statement(&template()).1["Condition"]);
    assert_eq!(member["Parameters"]["ExceptionTagKey"]["Default"], "AccessException");
}

#[test]
fn the_member_role_reads_what_the_function_role_reads() {
    let t = template();
    let member = member_template();
    let function_iam: BTreeSet<&str> = role_statements(&t)
        .into_iter()
        .flat_map(actions)
        .filter(|a| a.starts_with("iam:") && *a != "iam:UntagUser" && !KEY_WRITES.contains(a))
        // Read in the management account only, with the function's own role.
        .filter(|a| !crate::role_actions::ORGANIZATION_ONLY.contains(a))
        .collect();
    let member_iam: BTreeSet<&str> = member_role_statements(&member)
        .into_iter()
        .flat_map(|(_, s)| actions(s))
        .filter(|a| *a != "iam:UntagUser")
        .collect();
    assert_eq!(member_iam, function_iam);
}

#[test]
fn members_forward_exactly_what_the_central_bus_rules_match_and_only_there() {
    let t = template();
    let member = member_template();
    let rule = |name: &str| {
        let r = &member["Resources"][name];
        assert_eq!(r["Type"], "AWS::Events::Rule", "{name}");
        assert!(r["Properties"]["EventBusName"].is_null(), "{name} listens on the default bus");
        let targets = r["Properties"]["Targets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{name}");
        assert_eq!(targets[0]["Arn"], "!Ref CentralEventBusArn", "{name}");
        assert_eq!(targets[0]["RoleArn"], "!GetAtt ForwardRole.Arn", "{name}");
        let when = r["Condition"].as_str().unwrap();
        let expr = member["Conditions"][when].as_str().unwrap();
        assert!(when == "ForwardEvents" || expr.contains("!Condition ForwardEvents"), "{name}: {when}");
        (r["Properties"]["EventPattern"].clone(), r["Properties"]["State"].clone())
    };
    for (forward, central) in [
        ("ForwardIamChanges", "OrganizationIamChangesRule"),
        ("ForwardRootSignIns", "OrganizationRootSignInRule"),
        ("ForwardBreakGlassRoleAssumptions", "OrganizationBreakGlassRoleRule"),
        ("ForwardBreakGlassUserSignIns", "OrganizationBreakGlassUserSignInRule"),
        ("ForwardOrganizationsChanges", "OrganizationsChangesRule"),
        ("ForwardRootAccess", "OrganizationRootAccessRule"),
        ("ForwardRootSessionCalls", "OrganizationRootSessionCallsRule"),
    ] {
        let (pattern, state) = rule(forward);
        let central = &resource(&t, central)["Properties"];
        assert_eq!(pattern, central["EventPattern"], "{forward}");
        // AssumeRole is read-only: the member's rule must see read-only management events too.
        assert_eq!(state, central["State"], "{forward}");
    }
    // The central account's own events reach the function on its default bus: not forwarded.
    assert_eq!(
        member["Conditions"]["ForwardEvents"],
        "!Not [!Equals [!Select [4, !Split [\":\", !Ref CentralEventBusArn]], !Ref AWS::AccountId]]"
    );
    let forward_role = &member["Resources"]["ForwardRole"]["Properties"];
    assert_eq!(
        forward_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "events.amazonaws.com"
    );
    let statements = forward_role["Policies"][0]["PolicyDocument"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(actions(&statements[0]), ["events:PutEvents"]);
    assert_eq!(statements[0]["Resource"], "!Ref CentralEventBusArn");
}

/// The organization scan's definition with its `${…}` filled in: the function's ARN and
/// `max_concurrency` (the `MaxConcurrency` parameter).
pub(crate) fn state_machine_definition(function_arn: &str, max_concurrency: u32) -> Value {
    let t = template();
    let text = resource(&t, "OrganizationScan")["Properties"]["DefinitionString"].as_str().unwrap();
    let text = text.strip_prefix("!Sub ").expect("the definition is an !Sub");
    let filled = text
        .replace("${AWS::Partition}", "aws")
        .replace("${Function.Arn}", function_arn)
        .replace("${MaxConcurrency}", &max_concurrency.to_string());
    assert!(!filled.contains("${"), "an unfilled substitution: {filled}");
    serde_json::from_str(&filled).unwrap_or_else(|e| panic!("the definition is not JSON: {e}\n{filled}"))
}

/// Every error `retry` retries: (error, backoff rate, jitter).
fn retried(retry: &Value) -> Vec<(&str, f64, &str)> {
    retry
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let backoff = r["BackoffRate"].as_f64().unwrap_or(2.0);
            let jitter = r["JitterStrategy"].as_str().unwrap_or("NONE");
            r["ErrorEquals"].as_array().unwrap().iter().map(move |e| (e.as_str().unwrap(), backoff, jitter))
        })
        .collect()
}

#[test]
fn the_organization_scan_maps_every_account_and_never_skips_a_failed_one() {
    let function = "arn:aws:lambda:us-east-1:123456789012:function:iam-sentinel";
    let d = state_machine_definition(function, 37);
    let states = &d["States"];
    assert_eq!(d["StartAt"], "ListAccounts");
    let invoke = "arn:aws:states:::lambda:invoke";

    let list = &states["ListAccounts"];
    assert_eq!(list["Resource"], invoke);
    assert_eq!(list["Parameters"], json!({"FunctionName": function, "Payload": {"list_accounts": {}}}));
    assert_eq!(
        list["ResultSelector"],
        json!({"accounts.$": "$.Payload.accounts", "management_account.$": "$.Payload.management_account",
               "root_managed_centrally.$": "$.Payload.root_managed_centrally"})
    );
    assert_eq!(list["Next"], "ScanAccounts");

    let map = &states["ScanAccounts"];
    assert_eq!(map["Type"], "Map");
    assert_eq!(map["ItemProcessor"]["ProcessorConfig"], json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}));
    assert_eq!(map["ItemsPath"], "$.accounts");
    assert_eq!(
        map["ItemSelector"],
        json!({"scan_account.$": "$$.Map.Item.Value", "management_account.$": "$.management_account",
               "root_managed_centrally.$": "$.root_managed_centrally"})
    );
    assert_eq!(map["MaxConcurrency"], 37, "MaxConcurrency comes from the parameter");
    assert_eq!(parameter_default(&template(), "MaxConcurrency"), "20");
    assert_eq!(map["ToleratedFailurePercentage"].as_f64(), Some(0.0), "one failed account fails the map");
    assert!(map["ToleratedFailureCount"].is_null());
    assert_eq!(map["ResultPath"], "$.results");
    assert_eq!(map["Next"], "Digest");
    assert_eq!(
        map["Catch"],
        json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "ReportFailure"}])
    );

    let processor = &map["ItemProcessor"];
    let child = &processor["States"][processor["StartAt"].as_str().unwrap()];
    assert_eq!(processor["States"].as_object().unwrap().len(), 1, "one task per account");
    assert_eq!(child["Resource"], invoke);
    assert_eq!(child["Parameters"], json!({"FunctionName": function, "Payload.$": "$"}));
    assert_eq!(child["End"], true);
    let kept: BTreeSet<&str> = child["ResultSelector"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(kept, ["account.$", "check_counts.$", "severity_counts.$", "users_scanned.$", "v.$"].into());
    for (key, path) in child["ResultSelector"].as_object().unwrap() {
        assert_eq!(path.as_str().unwrap(), format!("$.Payload.{}", key.trim_end_matches(".$")));
    }
    let retries = retried(&child["Retry"]);
    for error in TRANSIENT {
        let (_, backoff, jitter) =
            retries.iter().find(|(e, ..)| e == error).unwrap_or_else(|| panic!("{error} is not retried"));
        assert!(*backoff > 1.0, "{error}: backoff");
        assert_eq!(*jitter, "FULL", "{error}: jitter spreads the retries of concurrent accounts");
    }
    for (error, ..) in &retries {
        assert!(!NOT_TRANSIENT.contains(error), "{error} fails the same way again: not retried");
        assert!(!error.starts_with("States."), "{error}: only named errors are retried");
    }
    for attempt in child["Retry"].as_array().unwrap() {
        assert!(attempt["MaxAttempts"].as_u64().unwrap() <= 6, "{attempt}");
    }

    let digest = &states["Digest"];
    assert_eq!(digest["Resource"], invoke);
    assert_eq!(
        digest["Parameters"],
        json!({"FunctionName": function, "Payload": {"org_digest": {"accounts.$": "$.accounts", "results.$": "$.results"}}})
    );
    assert_eq!(digest["End"], true);

    let report = &states["ReportFailure"];
    assert_eq!(
        report["Parameters"],
        json!({"FunctionName": function, "Payload": {"org_digest": {"accounts.$": "$.accounts", "failure.$": "$.failure"}}})
    );
    assert!(report["Catch"].is_null(), "a failed report fails the execution too");
    assert_eq!(states[report["Next"].as_str().unwrap()]["Type"], "Fail");
    for (name, state) in states.as_object().unwrap() {
        if state["Type"] == "Task" {
            let retries = retried(&state["Retry"]);
            assert!(retries.iter().any(|(e, ..)| *e == "Lambda.TooManyRequestsException"), "{name}");
            assert!(retries.iter().all(|(e, ..)| !NOT_TRANSIENT.contains(e)), "{name}");
        }
    }
}

#[test]
fn the_organization_scan_may_invoke_the_function_and_run_its_own_children_only() {
    let t = template();
    let machine = &resource(&t, "OrganizationScan")["Properties"];
    assert_eq!(machine["StateMachineType"], "STANDARD");
    assert_eq!(machine["RoleArn"], "!GetAtt OrganizationScanRole.Arn");
    let logs = &machine["LoggingConfiguration"];
    assert_eq!(
        logs["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"],
        "!GetAtt OrganizationScanLogGroup.Arn"
    );
    assert_ne!(logs["Level"], "OFF");

    let role = &resource(&t, "OrganizationScanRole")["Properties"];
    assert_eq!(role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"], "states.amazonaws.com");
    let statements: Vec<&Value> = role["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .chain(
            resource(&t, "OrganizationScanChildExecutions")["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap(),
        )
        .collect();
    let grant = |action: &str| -> Vec<&Value> {
        statements.iter().filter(|s| actions(s).contains(&action)).map(|s| &s["Resource"]).collect()
    };
    assert_eq!(grant("lambda:InvokeFunction"), [&json!(["!GetAtt Function.Arn", "!Sub \"${Function.Arn}:*\""])]);
    assert_eq!(grant("states:StartExecution"), [&json!("!Ref OrganizationScan")]);
    let children = json!(
        "!Sub arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${OrganizationScan.Name}/*"
    );
    assert_eq!(grant("states:DescribeExecution"), [&children]);
    assert_eq!(grant("states:StopExecution"), [&children]);
    for s in &statements {
        for action in actions(s) {
            let known = ["lambda:", "states:", "logs:", "xray:"].iter().any(|p| action.starts_with(p));
            assert!(known, "{action}: the state machine's role grants more than it uses");
        }
    }
    assert_eq!(resource(&t, "OrganizationScanChildExecutions")["Properties"]["RoleName"], "!Ref OrganizationScanRole");

    // The daily schedule starts the state machine, with a role that can start only it.
    let schedule = &resource(&t, "OrganizationScanSchedule")["Properties"];
    let targets = schedule["Targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["Arn"], "!Ref OrganizationScan");
    assert_eq!(targets[0]["RoleArn"], "!GetAtt OrganizationScanScheduleRole.Arn");
    assert_eq!(targets[0]["DeadLetterConfig"]["Arn"], "!GetAtt DeadLetterQueue.Arn");
    let start =
        &resource(&t, "OrganizationScanScheduleRole")["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    assert_eq!(start.as_array().unwrap().len(), 1);
    assert_eq!(actions(&start[0]), ["states:StartExecution"]);
    assert_eq!(start[0]["Resource"], "!Ref OrganizationScan");
}

// ---------------------------------------------------------------------------------------------
// The role enforces what the code promises: the key changes evaluated for every kind of user
// ---------------------------------------------------------------------------------------------

/// Resolves the intrinsic functions the role's statements use (`!Ref`, `!Sub`, `!Split`,
/// `!Join`) with `params` set and the pseudo parameters of account 123456789012 in `aws`.
fn resolve(t: &Value, v: &Value, params: &[(&str, &str)]) -> Value {
    let pseudo = |name: &str| match name {
        "AWS::Partition" => "aws".to_owned(),
        "AWS::AccountId" => "123456789012".to_owned(),
        "AWS::Region" => "us-east-1".to_owned(),
        p => parameter(t, params, p).to_owned(),
    };
    let sub = |template: &str, vars: &Map<String, Value>| {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 2..end];
            out.push_str(&match vars.get(name) {
                Some(v) => resolve(t, v, params).as_str().unwrap().to_owned(),
                None => pseudo(name),
            });
            rest = &rest[end + 1..];
        }
        out + rest
    };
    let function = |tag: &str, arg: Value| -> Value {
        let list = |a: &Value| a.as_array().unwrap_or_else(|| panic!("{tag} expects a list: {a}")).clone();
        match tag {
            "!Ref" => Value::String(pseudo(arg.as_str().unwrap())),
            "!Sub" => match &arg {
                Value::String(template) => Value::String(sub(template, &Map::new())),
                a => {
                    let a = list(a);
                    Value::String(sub(a[0].as_str().unwrap(), a[1].as_object().unwrap()))
                }
            },
            "!Split" => {
                let a = list(&arg);
                let whole = resolve(t, &a[1], params);
                Value::Array(whole.as_str().unwrap().split(a[0].as_str().unwrap()).map(|p| json!(p)).collect())
            }
            "!Join" => {
                let a = list(&arg);
                let parts = resolve(t, &a[1], params);
                let parts: Vec<&str> = parts.as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
                Value::String(parts.join(a[0].as_str().unwrap()))
            }
            other => panic!("cannot resolve {other}"),
        }
    };
    match v {
        Value::String(text) if text.starts_with('!') => {
            let (tag, arg) = text.split_once(' ').unwrap();
            let arg = if arg.starts_with('[') { scalar(arg) } else { Value::String(arg.to_owned()) };
            function(tag, arg)
        }
        Value::Object(o) if o.len() == 1 && o.keys().next().unwrap().starts_with('!') => {
            let (tag, arg) = o.iter().next().unwrap();
            function(tag, arg.clone())
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .flat_map(|i| match resolve(t, i, params) {
                    Value::Array(a) => a,
                    one => vec![one],
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// IAM's `*` wildcard (any run of characters, `/` included).
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head) && (0..=text.len() - head.len()).any(|i| glob(tail, &text[head.len() + i..]))
        }
    }
}

/// The FunctionRole's statements about keys (`KEY_WRITES`) as deployed with `params`: `!If`
/// decided, intrinsics resolved.
fn deployed_statements(t: &Value, params: &[(&str, &str)]) -> Vec<Value> {
    let policies = resource(t, "FunctionRole")["Properties"]["Policies"].as_array().unwrap();
    policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter_map(|s| match s.get("!If") {
            Some(b) => {
                let b = b.as_array().unwrap();
                let chosen =
                    if evaluate_with(t, &format!("!Condition {}", b[0].as_str().unwrap()), params) == json!(true) {
                        &b[1]
                    } else {
                        &b[2]
                    };
                chosen.is_object().then_some(chosen)
            }
            None => Some(s),
        })
        .filter(|s| actions(s).iter().any(|a| KEY_WRITES.contains(a)))
        .map(|s| {
            let mut s = s.clone();
            s["Resource"] = resolve(t, &s["Resource"], params);
            if let Some(conditions) = s.get_mut("Condition").and_then(Value::as_object_mut) {
                for keys in conditions.values_mut() {
                    for v in keys.as_object_mut().unwrap().values_mut() {
                        *v = resolve(t, v, params);
                    }
                }
            }
            s
        })
        .collect()
}

/// Whether the deployed role lets the function take `action` on the user `user_arn` carrying
/// `tags`: some Allow matches and no Deny does. Condition keys: `iam:ResourceTag/…` (tag keys
/// matched ignoring case, as IAM does) with `StringEquals` and `Null`.
fn role_allows(statements: &[Value], action: &str, user_arn: &str, tags: &[(&str, &str)]) -> bool {
    let tag = |key: &str| {
        let name = key.strip_prefix("iam:ResourceTag/").unwrap_or_else(|| panic!("no evaluator for {key}"));
        tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    };
    let matches = |s: &Value| {
        let resources: Vec<&str> = match &s["Resource"] {
            Value::String(r) => vec![r.as_str()],
            Value::Array(a) => a.iter().map(|r| r.as_str().unwrap()).collect(),
            r => panic!("unexpected Resource {r}"),
        };
        actions(s).contains(&action)
            && resources.iter().any(|r| glob(r, user_arn))
            && s.get("Condition").and_then(Value::as_object).is_none_or(|c| {
                c.iter().all(|(operator, keys)| {
                    keys.as_object().unwrap().iter().all(|(key, value)| {
                        let values: Vec<&str> = match value {
                            Value::String(v) => vec![v.as_str()],
                            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
                            v => panic!("unexpected condition value {v}"),
                        };
                        match operator.as_str() {
                            "StringEquals" => tag(key).is_some_and(|t| values.contains(&t)),
                            "Null" => (tag(key).is_none()) == (values == ["true"]),
                            o => panic!("no evaluator for condition operator {o}: extend the test"),
                        }
                    })
                })
            })
    };
    let matching: Vec<&Value> = statements.iter().filter(|s| matches(s)).collect();
    matching.iter().any(|s| s["Effect"] == "Allow") && !matching.iter().any(|s| s["Effect"] == "Deny")
}

/// (user, path, tags, the code deactivates its stale keys, the code rotates its keys).
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], bool, bool);

fn user_with(name: &str, path: &str, tags: &[(&str, &str)]) -> UserSnapshot {
    UserSnapshot {
        created: None,
        name: name.into(),
        arn: format!("arn:aws:iam::123456789012:user{path}{name}"),
        tags: tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
        keys: vec![],
        password_enabled: false,
        password_last_used: None,
        password_set: None,
        mfa_active: false,
        policies: None,
    }
}

/// Every kind of user the code spares or acts on, against the role as deployed: the role allows
/// a key change exactly where the code may make it, so a buggy build cannot touch exempt or
/// break-glass users; rotation's key calls only reach users carrying the opt-in tag with the
/// value of the one parameter that also feeds the function.
#[test]
fn the_role_allows_key_changes_exactly_where_the_code_may_make_them() {
    let t = template();
    let env = &resource(&t, "Function")["Properties"]["Environment"]["Variables"];
    assert_eq!(env["ROTATION_TAG_VALUE"], json!("!Ref RotationTagValue"), "one parameter feeds the function...");
    let (_, rotate) = conditional_statement(&t, "RotateOptedInKeysOnly");
    let rotation_key = format!("iam:ResourceTag/{}", iam_sentinel::config::Rotation::default().tag_key);
    assert_eq!(
        rotate["Condition"]["StringEquals"][&rotation_key],
        json!("!Ref RotationTagValue"),
        "...and the condition"
    );
    let (_, stale) = conditional_statement(&t, "DeactivateStaleKeys");
    let exempt_key = format!("iam:ResourceTag/{}", iam_sentinel::config::StaleKeys::default().exempt_tag);
    assert_eq!(stale["Condition"]["Null"][&exempt_key], json!("true"));
    assert_eq!(
        strings(&t["Parameters"]["StaleKeyExemptTag"]["AllowedValues"]),
        [parameter_default(&t, "StaleKeyExemptTag")]
    );

    let on = [
        ("DeactivateStaleKeys", "true"),
        ("RotateKeys", "true"),
        ("BreakGlassUsers", "breakglass-admin,bg-ops"),
        ("RotationTagValue", "weekly"),
    ];
    let deployed = deployed_statements(&t, &on);
    let config = iam_sentinel::config::Config::from_lookup(|k| {
        [
            ("APPROVALS_SECRET_ID", "registry"),
            ("DEACTIVATE_STALE_KEYS", "true"),
            ("ROTATE_KEYS", "true"),
            ("BREAK_GLASS_USERS", "breakglass-admin,bg-ops"),
            ("ROTATION_TAG_VALUE", "weekly"),
        ]
        .iter()
        .find(|(n, _)| *n == k)
        .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    let rotation = ("iam-sentinel:rotation", "weekly");
    // (user, path, tags, the code deactivates its stale keys, the code rotates its keys)
    let cases: &[Case] = &[
        ("svc-plain", "/", &[], true, false),
        ("svc-kept", "/", &[("iam-sentinel:keep-keys", "")], false, false),
        ("svc-kept-spelled", "/", &[("IAM-Sentinel:Keep-Keys", "until 2027")], false, false),
        ("breakglass-admin", "/", &[], false, false),
        ("bg-ops", "/emergency/", &[rotation], false, false),
        ("breakglass-admin", "/", &[rotation], false, false),
        ("svc-rotated", "/", &[rotation], false, true),
        ("svc-rotated-path", "/apps/", &[rotation], false, true),
        ("svc-old-value", "/", &[("iam-sentinel:rotation", "auto")], true, false),
    ];
    for (name, path, tags, deactivates, rotates) in cases {
        let user = user_with(name, path, tags);
        // What the code decides for this user.
        let mut old = user.clone();
        old.keys = vec![iam_sentinel::snapshot::AccessKey {
            key: iam_sentinel::snapshot::KeyRef::Id("AKIA1".into()),
            active: true,
            created: chrono::Utc::now() - chrono::Duration::days(400),
            last_used: None,
        }];
        let plan = iam_sentinel::remediate::stale::plan(&old, &config.policy, &config.stale_keys, chrono::Utc::now());
        let code_deactivates =
            plan.iter().any(|p| matches!(p.decision, iam_sentinel::remediate::stale::Decision::Deactivate(_)));
        let code_rotates = config.rotation.opts_in(&user.tags) && !config.policy.is_break_glass_user(&user.name);
        assert_eq!((code_deactivates, code_rotates), (*deactivates, *rotates), "{name}: the code's decision");
        // What the role allows, whatever the code decides.
        let update = role_allows(&deployed, "iam:UpdateAccessKey", &user.arn, tags);
        let create = role_allows(&deployed, "iam:CreateAccessKey", &user.arn, tags);
        let delete = role_allows(&deployed, "iam:DeleteAccessKey", &user.arn, tags);
        assert_eq!(update, deactivates | rotates, "{name}: UpdateAccessKey");
        assert_eq!((create, delete), (*rotates, *rotates), "{name}: CreateAccessKey, DeleteAccessKey");
    }
    // With the defaults (nothing enabled) no key change is allowed to anyone.
    let off = deployed_statements(&t, &[]);
    for action in KEY_WRITES {
        assert!(!role_allows(
            &off,
            action,
            "arn:aws:iam::123456789012:user/svc-rotated",
            &[("iam-sentinel:rotation", "auto")]
        ));
    }
    // The function never reads a rotated secret's value.
    let reads_keys = role_statements(&t).into_iter().any(|s| {
        actions(s).contains(&"secretsmanager:GetSecretValue") && s["Resource"].to_string().contains("iam-sentinel/keys")
    });
    assert!(!reads_keys, "no GetSecretValue on iam-sentinel/keys/*");
}

#[test]
fn the_evaluator_resolves_what_the_role_uses() {
    assert!(glob("arn:*:iam::*:user/*/bg", "arn:aws:iam::1:user/a/b/bg"));
    assert!(!glob("arn:*:iam::*:user/bg", "arn:aws:iam::1:user/x/bg"));
    assert!(!glob("arn:*:iam::*:user/bg", "arn:aws:iam::1:user/bgx"));
    let t = template();
    let deny = deployed_statements(&t, &[("BreakGlassUsers", "a,b")])
        .into_iter()
        .find(|s| s["Sid"] == "NeverChangeBreakGlassUsersKeys")
        .unwrap();
    assert_eq!(
        deny["Resource"],
        json!(["arn:*:iam::*:user/a", "arn:*:iam::*:user/b", "arn:*:iam::*:user/*/a", "arn:*:iam::*:user/*/b"])
    );
}
