//! HTTP plumbing: API errors as JSON, extractors of bodies, paths and queries that name the
//! wrong field, and the bearer scheme.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::store::StoreError;

/// An API error: a status and a JSON body `{"error": "...", "field": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What is wrong.
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
}

impl ApiError {
    /// 400 naming `field`.
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: (!field.is_empty()).then_some(field),
        }
    }
    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("{} not found", what.into()),
            field: None,
        }
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            message: message.into(),
            field: None,
        }
    }
    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            field: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.conflict {
            return ApiError {
                status: StatusCode::CONFLICT,
                message: "the name is already taken".into(),
                field: Some("name".into()),
            };
        }
        ApiError::internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(f) = self.field {
            body["field"] = f.into();
        }
        (self.status, axum::Json(body)).into_response()
    }
}

/// A JSON body; a wrong body gives a 400 naming the field (`source.tables[0]`).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: "expected a JSON body (Content-Type: application/json)".into(),
                field: None,
            }
            .into_response());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError {
                status: e.status(),
                message: format!("cannot read the body: {}", e.body_text()),
                field: None,
            }
            .into_response()
        })?;
        parse_json(&bytes)
            .map(Body)
            .map_err(IntoResponse::into_response)
    }
}

/// Path parameters (`{id}`, `{token}`); a wrong one is a JSON `400` naming it, like every
/// other error of the API (axum's own rejection is plain text).
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParams(v)),
            Err(e) => {
                use axum::extract::path::ErrorKind;
                let (field, message) = match e {
                    axum::extract::rejection::PathRejection::FailedToDeserializePathParams(d) => {
                        match d.into_kind() {
                            ErrorKind::ParseErrorAtKey {
                                key, expected_type, ..
                            } => (
                                key.clone(),
                                format!("the path's {key} must be {}", article(expected_type)),
                            ),
                            ErrorKind::ParseError { expected_type, .. } => (
                                "id".to_owned(),
                                format!("the path's id must be {}", article(expected_type)),
                            ),
                            other => (String::new(), format!("bad path: {other}")),
                        }
                    }
                    other => (String::new(), format!("bad path: {}", other.body_text())),
                };
                Err(ApiError::bad(field, message))
            }
        }
    }
}

/// Query parameters (`?category=error&limit=10`); a wrong one is a JSON `400` naming it.
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(raw.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." { String::new() } else { path };
                ApiError::bad(field, format!("invalid query: {}", e.inner()))
            })
    }
}

fn form_urlencoded_parse(raw: &[u8]) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(raw)
}

/// An id from the path (`/api/tasks/{id}`).
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let PathParams(id) = PathParams::<i64>::from_request_parts(parts, state).await?;
        Ok(Id(id))
    }
}

fn article(rust_type: &str) -> &'static str {
    match rust_type {
        "i64" | "u64" | "i32" | "u32" | "usize" => "a whole number",
        _ => "valid",
    }
}

/// The JSON `404` of a path no route has.
pub async fn no_route(req: Request) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("{} {}: no such route", req.method(), req.uri().path()),
        field: None,
    }
}

/// The JSON `405` of a method a path does not take.
pub async fn no_method(req: Request) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{} is not allowed on {}", req.method(), req.uri().path()),
        field: None,
    }
}

/// Parses JSON bytes into `T`, naming the path of the wrong field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        ApiError::bad(field, format!("invalid JSON: {}", e.inner()))
    })
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials of an `Authorization: Bearer <token>` header; the scheme's case does not
/// matter (RFC 9110 section 11.1).
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct In {
            name: String,
            inner: Vec<u32>,
        }
        let e = parse_json::<In>(br#"{"name":"x","inner":[1,"a"]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner[1]"));
    }
}
