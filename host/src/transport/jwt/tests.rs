//! Unit tests of the validation rules, with throwaway keys generated for these tests only
//! (never used anywhere else) and a fixed clock.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const EC_A_DER: &str = concat!(
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7hxHLuASJ0TkTvWYirDpSaU3MOCIMEkTKkPIFREm06ChRANC",
    "AAR5rv7jjIG1b6hcnSgLwNMgw3rHG4AQEeiigioYuq/PS5IwuG3PX9ulCl7YJSeZOsNb3CRY5r+l9PdvQjrCasdw",
);
const EC_A_JWK: &str = r#"{"kty":"EC","x":"ea7-44yBtW-oXJ0oC8DTIMN6xxuAEBHoooIqGLqvz0s","y":"kjC4bc9f26UKXtglJ5k6w1vcJFjmv6X0929COsJqx3A","crv":"P-256"}"#;
const EC_B_DER: &str = concat!(
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjtKV/l+TJAo8cLm2/5/HDeZfxwraLtla0OpjMyU8KNmhRANC",
    "AAS6sOcfXRfsmluElLnptEHf0aUi+4HUJXjoOKrZEbChG+C2eofKTIsPEvbfBO16C9TMg3IzTjHyaHs+gZVRA5Ww",
);
const ED_DER: &str = "MC4CAQAwBQYDK2VwBCIEILaV0njnp9/FcoDE+1Ln8qT+L29qFewz4IyCQeHUDvOo";
const ED_JWK: &str = r#"{"crv":"Ed25519","x":"clytmBHVuLsThCf49AD2cHs78V2AeLA4QDNNDXXsmy4","kty":"OKP"}"#;
const RSA_DER: &str = concat!(
    "MIIEowIBAAKCAQEApc/Z2jc8DTkxVP0pfYzcozBOvXYJ6GeSCUtSX4z+UrLYpv40/evceio4zKB6LVKphNIJ0Fy4igQHPv80",
    "fMwQUNqDGtbcRr7JpQVoaoaXZJcGMa5Zb3J57AJtgyINBTHbY/JHymREKh0I4obpSHV8z02e3pNtcZI97zWgoJbzW44NVBTO",
    "WZo7/E7b1VOBnPEoXKY6LXcwsgeiZt1Vx6hGUsHgUZMmL9N2cw0MKGfhpd+1WY4P4Hp1G9gznPjynxlW6El40G+4d978itfi",
    "tk8IxaLLEu2e/2iB9vavlhrnVNnZNzJkC4ea/SHjVu5o4VXLgq2hmnTU9wwdVy0imaZv1QIDAQABAoIBABp1Fjii2B7vCY9b",
    "Xve01o7meiXylAWkoxF/Fot/EqSs+3N3/AopTLKkkpAaKiyZtElof17jMKH7HxHfBGfGYvMXztQlRRw3vLKrcHwQ8k6/Z2Jd",
    "hNFK5afyQjmqoQO7bxudUPW7NoI2xFBrAQXKE2p7ovY2dX/p+x50guck9vtcZvQg2CT3IKG9LwIqzv0eM74iglnqSH28JoU/",
    "Lun8TrboobWS44TnBlMfQOv8JDH344o7gJ7I0hccyVEpwWal1KVLp5r3j8k1AR3DBrchDwS89mVAp4kAfco0UNgHc/ThWljC",
    "LOoD2+843VDrAnNIa88pEtHB32fenjFmn5Of0pkCgYEA41DxYbtSodctKrF6VD/RvTaDEZQvWir+Xoehpa9sYTHBIjSnff66",
    "Lk7FiSRN/dO+HGFrYRIe7y/xxwqiSlzVkFTTWUfQjT1RD5YQ1aH3gxgIbVdT6e/pNOq8/sxK8pfUqmWQdqOPwnPw+Ps311/+",
    "l6/N85vzpeV2qWmGdTHiUOkCgYEAurwecSIstTF7AOIZDjnopxZwaFRs8mE/M7FdHLq7Ha4ThcJ5dwDKki+WZLWT9toRKJmp",
    "6UoVgvkkGUDJIIjWMwjKKVXO4auMws/3qf8XlM/oLK49KEfn9fJwRNnXAbxL7rUf0iRs8BpGOAKPGku5n+ETTCx5exAXA9fk",
    "bidRNA0CgYEAo6F4oKl/ahDC6qCnNk5aZKIA536MN5QLV3C649HLaouuQzkz+HaM/xilCXugyL7LcxKNgWrR6cvRdz4oZO8+",
    "rI7jNLmFXqZs25NiuuXEjhGWv17FgPi6HuV69s+Ig+jXpXFG9J/4tDlRlWkBYYAwfHCJCHuSgDEVog3cRDCMgUECgYAYYx8a",
    "qVrrYwXsbJrXF8sBn1WY2oXL9dVaO+ysJtrvGl/kVSyl1Q2fn+VlS62CTKJ3CfJ9zDYY/86uGZ7qx9QpoBk+4rz9Dfl5K83t",
    "fqomvixVQYAtNY7euQXeiBCjYmMMTs1UFXvAs7297N+hkIgykCOEDD7lSomm79geZrYdNQKBgF+pwcYH9YdPGdbtRg8bgsKO",
    "lrGcOzFPushcrFKos964zCYxO3+Y9kfpBplPskIooh74DulQsiXNpph23yc1WOHtP/wVk1/sxmPMxIiARNWFZRxLWHQfOSjJ",
    "XXbpbRep2pClVw3YlpdNILzoAs+/sUkp+PLCvzT4z6XhyTAxU4Tr",
);
const RSA_JWK: &str = r#"{"kty":"RSA","n":"pc_Z2jc8DTkxVP0pfYzcozBOvXYJ6GeSCUtSX4z-UrLYpv40_evceio4zKB6LVKphNIJ0Fy4igQHPv80fMwQUNqDGtbcRr7JpQVoaoaXZJcGMa5Zb3J57AJtgyINBTHbY_JHymREKh0I4obpSHV8z02e3pNtcZI97zWgoJbzW44NVBTOWZo7_E7b1VOBnPEoXKY6LXcwsgeiZt1Vx6hGUsHgUZMmL9N2cw0MKGfhpd-1WY4P4Hp1G9gznPjynxlW6El40G-4d978itfitk8IxaLLEu2e_2iB9vavlhrnVNnZNzJkC4ea_SHjVu5o4VXLgq2hmnTU9wwdVy0imaZv1Q","e":"AQAB"}"#;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";

fn der(base64_text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(base64_text).expect("test key")
}

fn with_kid(jwk: &str, kid: &str, extra: Value) -> Value {
    let mut value: Value = serde_json::from_str(jwk).expect("jwk");
    let object = value.as_object_mut().expect("object");
    object.insert("kid".into(), kid.into());
    if let Value::Object(extra) = extra {
        object.extend(extra);
    }
    value
}

fn jwks() -> Vec<u8> {
    serde_json::to_vec(&json!({"keys": [
        with_kid(EC_A_JWK, "ec-a", json!({"alg": "ES256", "use": "sig"})),
        with_kid(ED_JWK, "ed", json!({})),
        with_kid(RSA_JWK, "rsa", json!({"alg": "RS256"})),
    ]}))
    .expect("json")
}

fn settings() -> JwtSettings {
    toml::from_str(&format!(
        "issuer = {ISSUER:?}\naudience = {AUDIENCE:?}\njwks_url = \"https://127.0.0.1:9/jwks\"\n\
         algorithms = [\"ES256\", \"EdDSA\", \"RS256\", \"PS256\"]"
    ))
    .expect("settings")
}

fn verifier() -> JwtVerifier {
    let verifier = JwtVerifier::new(&settings(), &["letta"]).expect("valid settings");
    verifier.inner.keys.insert_for_test(&jwks()).expect("keys");
    verifier
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "agent-7", "exp": NOW + 300, "iat": NOW, "groups": ["ops"]})
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn ec_a(claims: &Value) -> String {
    sign(Algorithm::ES256, Some("ec-a"), &EncodingKey::from_ec_der(&der(EC_A_DER)), claims)
}

async fn check(token: &str) -> Result<Verified, Refusal> {
    verifier().inner.verify(token, NOW).await
}

fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut claims = claims();
    change(claims.as_object_mut().expect("object"));
    claims
}

/// `header.payload.` with the given header JSON and a signature of junk.
fn unsigned(header: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    format!("{}.{}.{}", b64(header), b64(&claims()), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"sig"))
}

#[tokio::test]
async fn a_token_from_each_key_family_names_its_subject_and_groups() {
    let verified = check(&ec_a(&claims())).await.expect("ES256");
    assert_eq!(&*verified.subject, "agent-7");
    assert_eq!(verified.groups.iter().map(|g| &**g).collect::<Vec<_>>(), ["ops"]);
    let ed = sign(Algorithm::EdDSA, Some("ed"), &EncodingKey::from_ed_der(&der(ED_DER)), &claims());
    assert!(check(&ed).await.is_ok(), "EdDSA");
    let rsa = sign(Algorithm::RS256, Some("rsa"), &EncodingKey::from_rsa_der(&der(RSA_DER)), &claims());
    assert!(check(&rsa).await.is_ok(), "RS256");
}

#[tokio::test]
async fn times_are_checked_with_the_leeway() {
    assert_eq!(
        check(&ec_a(&with(|c| drop(c.insert("exp".into(), json!(NOW - 61)))))).await.err(),
        Some(Refusal::Expired)
    );
    assert!(check(&ec_a(&with(|c| drop(c.insert("exp".into(), json!(NOW - 59)))))).await.is_ok(), "within the leeway");
    assert_eq!(check(&ec_a(&with(|c| drop(c.remove("exp"))))).await.err(), Some(Refusal::Claim("exp")));
    let nbf = with(|c| drop(c.insert("nbf".into(), json!(NOW + 61))));
    assert_eq!(check(&ec_a(&nbf)).await.err(), Some(Refusal::NotYetValid));
    assert!(check(&ec_a(&with(|c| drop(c.insert("nbf".into(), json!(NOW + 59)))))).await.is_ok());
    let iat = with(|c| drop(c.insert("iat".into(), json!(NOW + 61))));
    assert_eq!(check(&ec_a(&iat)).await.err(), Some(Refusal::IssuedInFuture));
}

/// CVE-2026-25537 was a claim of the wrong JSON type read as an absent one: here it is refused.
#[tokio::test]
async fn a_claim_of_the_wrong_type_is_refused_not_ignored() {
    for (claim, value) in [
        ("exp", json!("1800000300")),
        ("exp", json!(1_800_000_300.5)),
        ("exp", json!(-1)),
        ("nbf", json!("0")),
        ("iat", json!(null)),
        ("iss", json!([ISSUER])),
        ("aud", json!(7)),
        ("aud", json!([AUDIENCE, 7])),
        ("sub", json!(42)),
    ] {
        let token = ec_a(&with(|c| drop(c.insert(claim.into(), value.clone()))));
        assert_eq!(check(&token).await.err(), Some(Refusal::Claim(claim)), "{claim} = {value}");
    }
    for claim in ["iss", "aud", "sub"] {
        assert_eq!(check(&ec_a(&with(|c| drop(c.remove(claim))))).await.err(), Some(Refusal::Claim(claim)));
    }
}

#[tokio::test]
async fn issuer_and_audience_must_be_ours() {
    let issuer = with(|c| drop(c.insert("iss".into(), json!("https://idp.example.com/"))));
    assert_eq!(check(&ec_a(&issuer)).await.err(), Some(Refusal::WrongIssuer));
    let audience = with(|c| drop(c.insert("aud".into(), json!("https://other.example.com"))));
    assert_eq!(check(&ec_a(&audience)).await.err(), Some(Refusal::WrongAudience));
    let several = with(|c| drop(c.insert("aud".into(), json!(["https://other.example.com", AUDIENCE]))));
    assert!(check(&ec_a(&several)).await.is_ok(), "aud lists ours among others");
}

#[tokio::test]
async fn signatures_algorithms_and_keys_must_agree() {
    // Signed by another key under this key's kid.
    let forged = sign(Algorithm::ES256, Some("ec-a"), &EncodingKey::from_ec_der(&der(EC_B_DER)), &claims());
    assert_eq!(check(&forged).await.err(), Some(Refusal::BadSignature));
    // `alg: none`: the header does not even parse.
    assert_eq!(check(&unsigned(&json!({"alg": "none", "kid": "ec-a"}))).await.err(), Some(Refusal::Malformed));
    // HS256 "keyed" with the public key's bytes.
    let hmac =
        sign(Algorithm::HS256, Some("ec-a"), &EncodingKey::from_secret(EC_A_JWK.as_bytes()).expect("key"), &claims());
    assert_eq!(check(&hmac).await.err(), Some(Refusal::Algorithm));
    // An EdDSA token naming the EC key, and a PS256 token naming a key declared RS256.
    let ed = sign(Algorithm::EdDSA, Some("ec-a"), &EncodingKey::from_ed_der(&der(ED_DER)), &claims());
    assert_eq!(check(&ed).await.err(), Some(Refusal::KeyMismatch));
    let ps = sign(Algorithm::PS256, Some("rsa"), &EncodingKey::from_rsa_der(&der(RSA_DER)), &claims());
    assert_eq!(check(&ps).await.err(), Some(Refusal::KeyMismatch));
    // An allowed family the settings leave out.
    let es384 = unsigned(&json!({"alg": "ES384", "kid": "ec-a"}));
    assert_eq!(check(&es384).await.err(), Some(Refusal::Algorithm));
    assert_eq!(check(&unsigned(&json!({"alg": "ES256"}))).await.err(), Some(Refusal::NoKeyId));
    let crit = unsigned(&json!({"alg": "ES256", "kid": "ec-a", "crit": ["exp"]}));
    assert_eq!(check(&crit).await.err(), Some(Refusal::Critical));
    assert_eq!(check(&"a".repeat(MAX_TOKEN_BYTES + 1)).await.err(), Some(Refusal::TooLarge));
    assert_eq!(check("not-a-jwt").await.err(), Some(Refusal::Malformed));
}

#[tokio::test]
async fn an_unknown_kid_is_refused_when_no_fetch_can_bring_it() {
    // The JWKS URL is a loopback address the settings do not allow: the refresh fails at once.
    let token = sign(Algorithm::ES256, Some("ec-b"), &EncodingKey::from_ec_der(&der(EC_B_DER)), &claims());
    let verifier = verifier();
    assert_eq!(verifier.inner.verify(&token, NOW).await.err(), Some(Refusal::UnknownKey));
    // The cached keys still work after the failed refresh.
    assert!(verifier.inner.verify(&ec_a(&claims()), NOW).await.is_ok());
}

#[tokio::test]
async fn subjects_are_bounded_and_cannot_take_a_static_name() {
    for bad in ["", " padded", "tab\there", "é", &"a".repeat(MAX_SUBJECT_BYTES + 1)] {
        let token = ec_a(&with(|c| drop(c.insert("sub".into(), json!(bad)))));
        assert_eq!(check(&token).await.err(), Some(Refusal::BadSubject), "{bad:?}");
    }
    for reserved in ["letta", "LETTA", "anonymous"] {
        let token = ec_a(&with(|c| drop(c.insert("sub".into(), json!(reserved)))));
        assert_eq!(check(&token).await.err(), Some(Refusal::ReservedSubject), "{reserved}");
    }
    let longest = ec_a(&with(|c| drop(c.insert("sub".into(), json!("u".repeat(MAX_SUBJECT_BYTES))))));
    assert!(check(&longest).await.is_ok());
}

#[test]
fn groups_are_a_list_or_a_spaced_string_or_the_token_is_refused() {
    let names = |claim: Value| groups(Some(&claim)).map(|g| g.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(names(json!(["ops", "Domain Users"])), Ok(vec!["ops".into(), "Domain Users".into()]));
    assert_eq!(names(json!("ops  readers")), Ok(vec!["ops".into(), "readers".into()]));
    assert_eq!(names(json!(null)), Ok(vec![]));
    assert!(groups(None).is_ok_and(|g| g.is_empty()));
    let too_many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
    for bad in [json!(too_many), json!(7), json!(["ops", 7]), json!([""]), json!(["a\nb"]), json!(["x".repeat(129)])] {
        assert_eq!(names(bad.clone()), Err(Refusal::BadGroups), "{bad}");
    }
}

#[test]
fn settings_refuse_what_cannot_be_verified_safely() {
    let error = |change: &dyn Fn(&mut JwtSettings)| {
        let mut settings = settings();
        change(&mut settings);
        JwtVerifier::new(&settings, &[]).err().map(|e| e.key)
    };
    assert_eq!(error(&|_| {}), None);
    for algorithms in [vec!["none"], vec!["HS256"], vec!["ES256", "hs512"], vec!["ES512"], vec![]] {
        let list: Vec<String> = algorithms.iter().map(|a| (*a).to_owned()).collect();
        assert_eq!(error(&|s| s.algorithms = list.clone()), Some("algorithms"), "{algorithms:?}");
    }
    assert_eq!(error(&|s| s.leeway_secs = MAX_LEEWAY_SECS + 1), Some("leeway_secs"));
    assert_eq!(error(&|s| s.jwks_refresh_secs = 0), Some("jwks_refresh_secs"));
    assert_eq!(error(&|s| s.jwks_url = "http://idp.example.com/jwks".into()), Some("jwks_url"));
    assert_eq!(error(&|s| s.jwks_url = "http://127.0.0.1:8080/jwks".into()), None, "plain http to loopback");
    assert_eq!(error(&|s| s.jwks_url = "https://u@idp.example.com/jwks".into()), Some("jwks_url"));
    assert_eq!(error(&|s| s.jwks_allow_ranges = vec!["10.0.0.0/33".into()]), Some("jwks_allow_ranges"));
    assert_eq!(error(&|s| s.resource = Some("https://mcp.example.com/mcp?x".into())), Some("resource"));
    assert_eq!(error(&|s| s.issuer = String::new()), Some("issuer"));
    assert_eq!(error(&|s| s.audience = "a".repeat(513)), Some("audience"));
    let defaults: JwtSettings =
        toml::from_str("issuer = \"i\"\naudience = \"a\"\njwks_url = \"https://x/\"").expect("parses");
    assert_eq!(defaults.algorithms, DEFAULT_ALGORITHMS);
    assert_eq!((defaults.leeway_secs, defaults.jwks_refresh_secs), (DEFAULT_LEEWAY_SECS, DEFAULT_REFRESH_SECS));
    assert_eq!(defaults.groups_claim, "groups");
    assert!(
        toml::from_str::<JwtSettings>("issuer = \"i\"\naudience = \"a\"\njwks_url = \"https://x/\"\nsecret = 1")
            .is_err()
    );
}

#[test]
fn only_public_signature_keys_are_kept() {
    let cache = keys::KeyCache::new(
        egress::Client::new(egress::Limits { timeout: JWKS_TIMEOUT, max_response_bytes: 1, allowed_ranges: vec![] }),
        "https://127.0.0.1:9/".into(),
        Duration::from_secs(60),
    );
    let small_rsa = json!({"kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"});
    let document = json!({"keys": [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        with_kid(EC_A_JWK, "enc", json!({"use": "enc"})),
        with_kid(EC_A_JWK, "wrap", json!({"alg": "RSA-OAEP"})),
        small_rsa,
        with_kid(EC_A_JWK, "", json!({})),
        {"kty": "AKP", "kid": "future", "alg": "ML-DSA-65", "pub": "AAAA"},
    ]});
    let refused = cache.insert_for_test(&serde_json::to_vec(&document).expect("json"));
    assert!(matches!(refused, Err(keys::JwksError::NoUsableKeys { skipped: 6 })), "{refused:?}");
    assert!(matches!(cache.insert_for_test(b"[]"), Err(keys::JwksError::Json(_))));
}

#[test]
fn the_challenge_points_to_the_metadata_and_says_when_a_token_was_refused() {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, "localhost:8000".parse().expect("host"));
    let verifier = verifier();
    assert_eq!(
        metadata::challenge(&verifier, "/mcp", &headers, false),
        "Bearer resource_metadata=\"http://localhost:8000/.well-known/oauth-protected-resource/mcp\""
    );
    assert_eq!(
        metadata::challenge(&verifier, "/messages", &headers, true),
        "Bearer resource_metadata=\"http://localhost:8000/.well-known/oauth-protected-resource/sse\", \
         error=\"invalid_token\""
    );
    headers.insert(header::HOST, "localhost:8000\"x".parse().expect("host"));
    assert_eq!(metadata::challenge(&verifier, "/mcp", &headers, true), "Bearer error=\"invalid_token\"");
    let mut configured = settings();
    configured.resource = Some("https://mcp.example.com/mcp".into());
    let verifier = JwtVerifier::new(&configured, &[]).expect("valid");
    assert_eq!(
        metadata::challenge(&verifier, "/mcp", &headers, false),
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
    );
}
