//! The HTTP bindings of the contract, read from the `google.api.http` option of each method in
//! the descriptor set: which verb and path reach which RPC, which request fields the path
//! carries and where the body goes. Nothing here names a particular RPC, so a new RPC is
//! reachable over HTTP as soon as the contract binds it.

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MethodDescriptor, ReflectMessage, Value,
};

/// The package whose services are bound; health and reflection stay gRPC-only.
const PACKAGE: &str = "sinergi.v1";
const HTTP_OPTION: &str = "google.api.http";

#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error("{0} has no google.api.http binding")]
    Unbound(String),
    #[error("{method}: the binding's path `{path}` is not a template this server reads")]
    Template { method: String, path: String },
    #[error("{method}: `{field}` in the binding is no field of the request")]
    UnknownField { method: String, field: String },
    #[error("the descriptor set lacks {0}")]
    Descriptors(&'static str),
}

/// Where a request's body goes.
#[derive(Clone, Debug)]
pub enum BodyRule {
    /// No body (reads).
    None,
    /// The whole request, less its path fields.
    Whole,
    /// One field of the request.
    Field(FieldDescriptor),
}

/// One binding of one RPC.
#[derive(Clone, Debug)]
pub struct Binding {
    pub method: MethodDescriptor,
    pub verb: http::Method,
    pub template: PathTemplate,
    pub body: BodyRule,
    /// `/sinergi.v1.Service/Method`: the gRPC path the call is made on.
    pub grpc_path: String,
    pub grpc_uri: http::Uri,
}

/// A path template: literal segments, `{field}` variables and an optional `:verb`.
#[derive(Clone, Debug)]
pub struct PathTemplate {
    pub text: String,
    segments: Vec<Segment>,
    custom_verb: Option<String>,
}

#[derive(Clone, Debug)]
enum Segment {
    Literal(String),
    /// The field path (`a.b`) the segment's value is written to.
    Variable(Vec<FieldDescriptor>),
}

/// The path variables of a matched request: each field path with its decoded text.
pub type PathValues = Vec<(Vec<FieldDescriptor>, String)>;

pub enum Matched<'a> {
    Found(&'a Binding, PathValues),
    /// The path is bound, but to other verbs.
    WrongVerb(Vec<http::Method>),
    NotFound,
}

pub struct Bindings {
    all: Vec<Binding>,
}

impl Bindings {
    /// Every binding of every method of the package; a method without one is an error, so the
    /// HTTP door never silently lacks an RPC the gRPC door has.
    pub fn from_pool(pool: &DescriptorPool) -> Result<Self, BindingError> {
        let option = pool
            .get_extension_by_name(HTTP_OPTION)
            .ok_or(BindingError::Descriptors(HTTP_OPTION))?;
        let mut all = Vec::new();
        for service in pool.services().filter(|s| s.package_name() == PACKAGE) {
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&option) {
                    return Err(BindingError::Unbound(method.full_name().to_owned()));
                }
                let Value::Message(rule) = options.get_extension(&option).into_owned() else {
                    return Err(BindingError::Unbound(method.full_name().to_owned()));
                };
                all.push(binding(&method, &rule)?);
                if let Some(Value::List(more)) = rule
                    .descriptor()
                    .get_field_by_name("additional_bindings")
                    .map(|field| rule.get_field(&field).into_owned())
                {
                    for rule in more {
                        if let Value::Message(rule) = rule {
                            all.push(binding(&method, &rule)?);
                        }
                    }
                }
            }
        }
        Ok(Self { all })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.all.iter()
    }

    /// The binding of a request's verb and path (still percent-encoded).
    pub fn find(&self, verb: &http::Method, path: &str) -> Matched<'_> {
        let Some((segments, custom_verb)) = split_path(path) else {
            return Matched::NotFound;
        };
        let mut other_verbs = Vec::new();
        for binding in &self.all {
            let Some(values) = binding.template.matches(&segments, custom_verb.as_deref()) else {
                continue;
            };
            if binding.verb == verb {
                return Matched::Found(binding, values);
            }
            other_verbs.push(binding.verb.clone());
        }
        if other_verbs.is_empty() {
            Matched::NotFound
        } else {
            Matched::WrongVerb(other_verbs)
        }
    }
}

fn binding(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Binding, BindingError> {
    let text_of = |name: &str| match rule
        .descriptor()
        .get_field_by_name(name)
        .filter(|field| rule.has_field(field))
        .map(|field| rule.get_field(&field).into_owned())
    {
        Some(Value::String(text)) => Some(text),
        _ => None,
    };
    let (verb, path) = [
        ("get", http::Method::GET),
        ("post", http::Method::POST),
        ("put", http::Method::PUT),
        ("patch", http::Method::PATCH),
        ("delete", http::Method::DELETE),
    ]
    .into_iter()
    .find_map(|(name, verb)| text_of(name).map(|path| (verb, path)))
    .ok_or_else(|| BindingError::Unbound(method.full_name().to_owned()))?;
    let input = method.input();
    let template = PathTemplate::parse(&path, &input).map_err(|problem| match problem {
        TemplateProblem::Syntax => BindingError::Template {
            method: method.full_name().to_owned(),
            path: path.clone(),
        },
        TemplateProblem::Field(field) => BindingError::UnknownField {
            method: method.full_name().to_owned(),
            field,
        },
    })?;
    let body = match text_of("body").as_deref() {
        None | Some("") => BodyRule::None,
        Some("*") => BodyRule::Whole,
        Some(name) => BodyRule::Field(input.get_field_by_name(name).ok_or_else(|| {
            BindingError::UnknownField {
                method: method.full_name().to_owned(),
                field: name.to_owned(),
            }
        })?),
    };
    let grpc_path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let grpc_uri = http::Uri::try_from(grpc_path.as_str()).map_err(|_| BindingError::Template {
        method: method.full_name().to_owned(),
        path: grpc_path.clone(),
    })?;
    Ok(Binding {
        grpc_path,
        grpc_uri,
        method: method.clone(),
        verb,
        template,
        body,
    })
}

enum TemplateProblem {
    Syntax,
    Field(String),
}

impl PathTemplate {
    fn parse(
        text: &str,
        input: &prost_reflect::MessageDescriptor,
    ) -> Result<Self, TemplateProblem> {
        let (segments, custom_verb) = split_path(text).ok_or(TemplateProblem::Syntax)?;
        let segments = segments
            .into_iter()
            .map(|segment| match segment.strip_prefix('{') {
                Some(variable) => {
                    let name = variable.strip_suffix('}').ok_or(TemplateProblem::Syntax)?;
                    field_path(input, name)
                        .map(Segment::Variable)
                        .ok_or_else(|| TemplateProblem::Field(name.to_owned()))
                }
                None if segment.contains(['{', '}', '*']) => Err(TemplateProblem::Syntax),
                None => Ok(Segment::Literal(segment)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            segments,
            custom_verb,
        })
    }

    fn matches(&self, segments: &[String], custom_verb: Option<&str>) -> Option<PathValues> {
        if segments.len() != self.segments.len() || custom_verb != self.custom_verb.as_deref() {
            return None;
        }
        let mut values = Vec::new();
        for (template, given) in self.segments.iter().zip(segments) {
            match template {
                Segment::Literal(literal) if literal == given => {}
                Segment::Literal(_) => return None,
                Segment::Variable(fields) => {
                    let decoded = percent_encoding::percent_decode_str(given)
                        .decode_utf8()
                        .ok()?
                        .into_owned();
                    if decoded.is_empty() {
                        return None;
                    }
                    values.push((fields.clone(), decoded));
                }
            }
        }
        Some(values)
    }

    /// The field paths the template binds, in order.
    pub fn variables(&self) -> impl Iterator<Item = &[FieldDescriptor]> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Variable(fields) => Some(fields.as_slice()),
            Segment::Literal(_) => None,
        })
    }
}

/// A path's segments and its custom verb (`:advance`, read from the last segment).
fn split_path(path: &str) -> Option<(Vec<String>, Option<String>)> {
    let path = path.strip_prefix('/')?;
    let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
    let last = segments.last_mut()?;
    let custom_verb = match last.rsplit_once(':') {
        // A colon inside a variable (`{name}`) is no verb.
        Some((rest, verb)) if !verb.contains('}') => {
            let verb = verb.to_owned();
            *last = rest.to_owned();
            Some(verb)
        }
        _ => None,
    };
    Some((segments, custom_verb))
}

/// A field path by its proto names, as bindings and error details write it (`region_prefix.code`).
pub fn dotted(fields: &[FieldDescriptor]) -> String {
    fields
        .iter()
        .map(FieldDescriptor::name)
        .collect::<Vec<_>>()
        .join(".")
}

/// The fields a dotted path (`region_prefix.code`, proto or JSON names) walks through; every
/// field but the last a singular message.
pub fn field_path(
    message: &prost_reflect::MessageDescriptor,
    dotted: &str,
) -> Option<Vec<FieldDescriptor>> {
    let mut fields = Vec::new();
    let mut current = message.clone();
    let mut names = dotted.split('.').peekable();
    while let Some(name) = names.next() {
        let field = current
            .get_field_by_name(name)
            .or_else(|| current.get_field_by_json_name(name))?;
        if names.peek().is_some() {
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
                _ => return None,
            }
        }
        fields.push(field);
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> Bindings {
        let pool = DescriptorPool::decode(crate::grpc::FILE_DESCRIPTOR_SET).expect("descriptors");
        Bindings::from_pool(&pool).expect("every method is bound")
    }

    #[test]
    fn every_rpc_of_the_contract_has_a_binding() {
        let pool = DescriptorPool::decode(crate::grpc::FILE_DESCRIPTOR_SET).expect("descriptors");
        let bindings = Bindings::from_pool(&pool).expect("every method is bound");
        for method in pool
            .services()
            .filter(|service| service.package_name() == PACKAGE)
            .flat_map(|service| service.methods().collect::<Vec<_>>())
        {
            assert!(
                bindings
                    .iter()
                    .any(|binding| binding.method.full_name() == method.full_name()),
                "{} is not reachable over HTTP",
                method.full_name()
            );
        }
    }

    #[test]
    fn a_custom_method_is_told_apart_from_a_resource_and_its_verb() {
        let bindings = bindings();
        let Matched::Found(binding, values) =
            bindings.find(&http::Method::POST, "/v1/referrals/0190-abc:advance")
        else {
            panic!("the custom method matches");
        };
        assert_eq!(
            binding.grpc_path,
            "/sinergi.v1.ReferralService/AdvanceReferral"
        );
        assert_eq!(values[0].1, "0190-abc");
        let Matched::Found(binding, _) = bindings.find(&http::Method::GET, "/v1/referrals:stats")
        else {
            panic!("the collection's custom method matches");
        };
        assert_eq!(
            binding.grpc_path,
            "/sinergi.v1.ReferralService/GetReferralStats"
        );
        assert!(matches!(
            bindings.find(&http::Method::DELETE, "/v1/referrals/x"),
            Matched::WrongVerb(verbs) if verbs == [http::Method::GET]
        ));
        assert!(matches!(
            bindings.find(&http::Method::GET, "/v1/referrals/x/y"),
            Matched::NotFound
        ));
    }

    #[test]
    fn a_path_variable_is_percent_decoded_and_never_empty() {
        let bindings = bindings();
        let Matched::Found(_, values) = bindings.find(&http::Method::GET, "/v1/employers/a%20b")
        else {
            panic!("matches");
        };
        assert_eq!(values[0].1, "a b");
        assert!(matches!(
            bindings.find(&http::Method::GET, "/v1/employers/"),
            Matched::NotFound
        ));
    }
}
