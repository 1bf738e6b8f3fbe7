//! A small typed model of IAM policy JSON: statements, effects, actions, resources and
//! conditions, parsed strictly (a document that is not shaped like a policy is a named error).
//! What a document means is judged in [`crate::checks::policy`].

use serde_json::Value;

/// A policy document that could not be read; the message names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON.
    #[error("policy document is not valid JSON: {0}")]
    Json(String),
    /// The URL-encoded text does not decode to UTF-8.
    #[error("policy document is not URL-encoded UTF-8: {0}")]
    Encoding(String),
    /// The JSON is not shaped like an IAM policy.
    #[error("policy document is malformed: {0}")]
    Shape(String),
}

/// `Effect`: IAM accepts exactly `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants, unless a deny matches.
    Allow,
    /// Wins over every allow.
    Deny,
}

/// `Action` (the actions matched) or `NotAction` (every action but these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actions {
    /// `Action`: these patterns.
    Only(Vec<String>),
    /// `NotAction`: everything except these patterns.
    AllExcept(Vec<String>),
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resources {
    /// `Resource`: these ARN patterns.
    Only(Vec<String>),
    /// `NotResource`: everything except these.
    AllExcept(Vec<String>),
}

/// `ForAllValues:` / `ForAnyValue:` in front of an operator (multivalued keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// `ForAllValues:`: true when every request value matches (and when there are none).
    ForAllValues,
    /// `ForAnyValue:`: true when at least one request value matches.
    ForAnyValue,
}

/// A condition operator split into its parts; names stay case-sensitive, as IAM treats them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// As written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub raw: String,
    /// The base operator, e.g. `StringLike`.
    pub name: String,
    /// The `IfExists` suffix: also true when the key is absent from the request.
    pub if_exists: bool,
    /// The set qualifier, if any.
    pub qualifier: Option<SetQualifier>,
}

impl Operator {
    /// Splits `raw` into qualifier, base name and `IfExists`.
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        let (qualifier, rest) = if let Some(r) = raw.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = raw.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, raw)
        };
        let (name, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) if !base.is_empty() => (base, true),
            _ => (rest, false),
        };
        Operator { raw: raw.to_owned(), name: name.to_owned(), if_exists, qualifier }
    }

    /// Whether this is exactly `name` (optionally `IfExists`) with no set qualifier.
    #[must_use]
    pub fn is(&self, name: &str) -> bool {
        self.qualifier.is_none() && self.name == name
    }
}

/// One operator → key → values entry of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The operator.
    pub operator: Operator,
    /// The condition key as written; compare with [`Condition::key_is`] (IAM keys are case-insensitive).
    pub key: String,
    /// The values; a single string, a boolean or a number become a one-element list.
    pub values: Vec<String>,
}

impl Condition {
    /// Whether the key is `name`, compared as IAM does (case-insensitively).
    #[must_use]
    pub fn key_is(&self, name: &str) -> bool {
        self.key.eq_ignore_ascii_case(name)
    }
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `Sid`, when present.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Action` or `NotAction`.
    pub actions: Actions,
    /// `Resource` or `NotResource`; `None` when neither is given (SCPs, trust policies).
    pub resources: Option<Resources>,
    /// Every condition of the statement; all must hold for the statement to apply.
    pub conditions: Vec<Condition>,
}

/// A parsed IAM policy document: its statements, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    /// `Statement`, a single object or a list in the JSON.
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Parses policy JSON text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Parses a document as `GetAccountAuthorizationDetails` and `GetPolicyVersion` return it:
    /// URL-encoded (RFC 3986; `+` is kept as a plus sign, not read as a space).
    pub fn parse_url_encoded(text: &str) -> Result<Self, PolicyError> {
        Self::parse(&url_decode(text)?)
    }

    /// Reads an already-decoded JSON value.
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let doc = value.as_object().ok_or_else(|| shape("the document is not a JSON object"))?;
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.iter().map(statement).collect::<Result<_, _>>()?,
            Some(single @ Value::Object(_)) => vec![statement(single)?],
            Some(_) => return Err(shape("Statement is neither an object nor a list")),
            None => return Err(shape("Statement is missing")),
        };
        Ok(PolicyDocument { statements })
    }
}

/// Decodes `%XX` escapes, as the IAM API encodes policy documents.
pub fn url_decode(text: &str) -> Result<String, PolicyError> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| PolicyError::Encoding(e.to_string()))
}

fn shape(what: &str) -> PolicyError {
    PolicyError::Shape(what.to_owned())
}

fn statement(value: &Value) -> Result<Statement, PolicyError> {
    let st = value.as_object().ok_or_else(|| shape("a statement is not a JSON object"))?;
    let sid = st.get("Sid").and_then(Value::as_str).map(str::to_owned);
    let named = |what: &str| match &sid {
        Some(sid) => format!("statement {sid}: {what}"),
        None => what.to_owned(),
    };
    let effect = match st.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(PolicyError::Shape(named("Effect must be \"Allow\" or \"Deny\""))),
    };
    let actions = match (st.get("Action"), st.get("NotAction")) {
        (Some(a), None) => Actions::Only(strings(a).ok_or_else(|| PolicyError::Shape(named("Action is not text")))?),
        (None, Some(a)) => {
            Actions::AllExcept(strings(a).ok_or_else(|| PolicyError::Shape(named("NotAction is not text")))?)
        }
        _ => return Err(PolicyError::Shape(named("exactly one of Action and NotAction is needed"))),
    };
    let resources = match (st.get("Resource"), st.get("NotResource")) {
        (Some(r), None) => {
            Some(Resources::Only(strings(r).ok_or_else(|| PolicyError::Shape(named("Resource is not text")))?))
        }
        (None, Some(r)) => {
            Some(Resources::AllExcept(strings(r).ok_or_else(|| PolicyError::Shape(named("NotResource is not text")))?))
        }
        (None, None) => None,
        (Some(_), Some(_)) => return Err(PolicyError::Shape(named("both Resource and NotResource are given"))),
    };
    let mut conditions = Vec::new();
    match st.get("Condition") {
        None => {}
        Some(Value::Object(block)) => {
            for (op, keys) in block {
                let keys = keys
                    .as_object()
                    .ok_or_else(|| PolicyError::Shape(named(&format!("Condition {op} is not an object"))))?;
                for (key, values) in keys {
                    let values = strings(values).ok_or_else(|| {
                        PolicyError::Shape(named(&format!("Condition {op} {key} has no usable values")))
                    })?;
                    conditions.push(Condition { operator: Operator::parse(op), key: key.clone(), values });
                }
            }
        }
        Some(_) => return Err(PolicyError::Shape(named("Condition is not an object"))),
    }
    Ok(Statement { sid, effect, actions, resources, conditions })
}

/// A string, or a list of them; IAM also takes booleans and numbers as condition values.
fn strings(value: &Value) -> Option<Vec<String>> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Array(list) => list.iter().map(scalar).collect(),
        other => scalar(other).map(|s| vec![s]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PUBLISHED_NETWORK: &str = include_str!("../../infra/policies/EnterpriseNetworkRestriction.json");

    fn doc(v: &Value) -> PolicyDocument {
        PolicyDocument::from_value(v).unwrap()
    }

    // ------------------------------------------------ model

    #[test]
    fn single_statement_object_and_statement_list_read_alike() {
        let one = doc(&json!({ "Statement": { "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*" } }));
        let list = doc(&json!({ "Statement": [{ "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"] }] }));
        assert_eq!(one, list);
        assert_eq!(one.statements[0].actions, Actions::Only(vec!["s3:GetObject".into()]));
    }

    #[test]
    fn condition_values_single_string_list_and_bool_literal_become_lists() {
        let d = doc(&json!({ "Statement": { "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {
            "Bool": { "aws:ViaAWSService": false },
            "NotIpAddress": { "aws:SourceIp": "192.0.2.0/24" },
            "StringEquals": { "aws:RequestedRegion": ["eu-west-1", "us-east-1"] } } } }));
        let c = &d.statements[0].conditions;
        assert_eq!(c.len(), 3);
        assert!(c.iter().any(|c| c.key_is("aws:viaawsservice") && c.values == ["false"]));
        assert!(c.iter().any(|c| c.key_is("AWS:SOURCEIP") && c.values == ["192.0.2.0/24"]));
        assert!(c.iter().any(|c| c.values.len() == 2));
    }

    #[test]
    fn operators_split_qualifier_name_and_if_exists_case_sensitively() {
        let op = Operator::parse("ForAnyValue:StringLikeIfExists");
        assert_eq!(
            (op.qualifier, op.name.as_str(), op.if_exists),
            (Some(SetQualifier::ForAnyValue), "StringLike", true)
        );
        let op = Operator::parse("ForAllValues:StringEquals");
        assert_eq!(
            (op.qualifier, op.name.as_str(), op.if_exists),
            (Some(SetQualifier::ForAllValues), "StringEquals", false)
        );
        // Wrong case is not a qualifier; IAM would not read it as one either.
        let op = Operator::parse("forallvalues:StringEquals");
        assert_eq!((op.qualifier, op.if_exists), (None, false));
        assert_eq!(Operator::parse("IfExists").name, "IfExists");
    }

    #[test]
    fn malformed_documents_are_named_errors_not_panics() {
        for bad in [
            json!([]),
            json!({}),
            json!({ "Statement": "x" }),
            json!({ "Statement": [{ "Effect": "allow", "Action": "*", "Resource": "*" }] }),
            json!({ "Statement": [{ "Effect": "Allow", "Resource": "*" }] }),
            json!({ "Statement": [{ "Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*" }] }),
            json!({ "Statement": [{ "Effect": "Allow", "Action": [1, {}], "Resource": "*" }] }),
            json!({ "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*", "NotResource": "x" }] }),
            json!({ "Statement": [{ "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": { "Bool": "x" } }] }),
            json!({ "Statement": [{ "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": [] }] }),
        ] {
            assert!(matches!(PolicyDocument::from_value(&bad), Err(PolicyError::Shape(_))), "{bad}");
        }
        assert!(matches!(PolicyDocument::parse("{not json"), Err(PolicyError::Json(_))));
        let e =
            PolicyDocument::from_value(&json!({ "Statement": { "Sid": "S1", "Effect": "Allow", "Resource": "*" } }));
        assert!(e.unwrap_err().to_string().contains("statement S1"));
    }

    #[test]
    fn url_encoded_documents_from_gaad_decode_before_parsing() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C\
                       %22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22arn%3Aaws%3Aiam%3A%3A1%3Auser%2Fa%2Bb%22%7D%7D";
        let d = PolicyDocument::parse_url_encoded(encoded).unwrap();
        // A `+` in a user name survives: RFC 3986 decoding, not form decoding.
        assert_eq!(d.statements[0].resources, Some(Resources::Only(vec!["arn:aws:iam::1:user/a+b".into()])));
        assert_eq!(url_decode("a%20b+c").unwrap(), "a b+c");
        assert!(matches!(url_decode("%FF%FE"), Err(PolicyError::Encoding(_))));
        // Text already decoded passes through.
        assert_eq!(
            PolicyDocument::parse_url_encoded(PUBLISHED_NETWORK).unwrap(),
            PolicyDocument::parse(PUBLISHED_NETWORK).unwrap()
        );
    }
}
