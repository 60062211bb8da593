//! Elastic Cloud's Cloud ID: `name:base64(host[:port]$es-uuid$kibana-uuid)` decodes to the
//! deployment's endpoint `https://es-uuid.host[:port]` (port 443 unless given).

use base64::Engine;

use crate::errors::EsError;

/// The https endpoint of a Cloud ID; an error naming `cloud_id` when it is malformed.
pub(crate) fn endpoint(cloud_id: &str) -> Result<String, EsError> {
    let bad = |why: &str| {
        EsError::Config(format!(
            "cloud_id: {why} (expected the Cloud ID from the Elastic Cloud console, `name:base64...`)"
        ))
    };
    let (_name, data) = cloud_id
        .split_once(':')
        .ok_or_else(|| bad("no ':' after the deployment name"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(data.trim()))
        .map_err(|_| bad("the part after ':' is not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| bad("it does not decode to text"))?;
    let mut parts = text.split('$');
    let host = parts.next().unwrap_or_default().trim();
    let es = parts.next().unwrap_or_default().trim();
    if host.is_empty() || es.is_empty() {
        return Err(bad("it does not name a host and an Elasticsearch id"));
    }
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, Some(p)),
        _ => (host, None),
    };
    let url = match port {
        Some(p) => format!("https://{es}.{host}:{p}"),
        None => format!("https://{es}.{host}"),
    };
    elasticsearch::http::Url::parse(&url).map_err(|e| bad(&format!("{url}: {e}")))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> String {
        format!(
            "my-deployment:{}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    #[test]
    fn cloud_ids_decode_to_https_endpoints() {
        assert_eq!(
            endpoint(&id("us-east-1.aws.found.io$abc123$kib456")).unwrap(),
            "https://abc123.us-east-1.aws.found.io"
        );
        assert_eq!(
            endpoint(&id("eu.example.com:9243$abc$")).unwrap(),
            "https://abc.eu.example.com:9243"
        );
        for bad in ["nocolon", "x:!!!", &id("onlyhost"), &id("$abc$def")] {
            let e = endpoint(bad).unwrap_err().to_string();
            assert!(e.contains("cloud_id"), "{bad}: {e}");
        }
    }
}
