//! Property-based fuzzing of session tokens: mutated, forged, mis-signed and mis-claimed tokens
//! straight into the verifier; signed links and resource claims through the app in process;
//! oversized tokens. Only an untouched token (or one whose signature decodes to the same bytes)
//! is ever accepted; a refusal is `invalid-credentials`, or `token-expired` only for a token that
//! is ours and late; the request size limits bound what the verifier is given.
//!
//! Bounded: FUZZ_CASES (default 500) cases per property. Cookie and Authorization parsing have
//! their own property tests in src/auth/credential.rs.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use crate::support::*;
use actix_web::rt::{System, SystemRunner};
use actix_web::test::TestRequest;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orthanc_edge::auth::{AuthError, Principal, SessionKeys, MAX_RESOURCES};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config as PtConfig, TestRunner};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const ISSUER: &str = "https://app.example";
const AUDIENCE: &str = "orthanc-edge";
const COOKIE: &str = "orthanc_edge_session";

fn runner() -> TestRunner {
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    TestRunner::new(PtConfig { cases, failure_persistence: None, ..PtConfig::default() })
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Session tokens on: the HS256 secret, RS256 (rsa-a, any kid) and ES256 (ec, kid `ec1`) public
/// keys; issuer and audience required; no leeway.
fn config(orthanc: &str, dir: &std::path::Path) -> orthanc_edge::config::Config {
    let keys = format!(
        r#"[{{"path":"{FIXTURES}/rsa-a.pub.pem","alg":"RS256"}},{{"path":"{FIXTURES}/ec.pub.pem","alg":"ES256","kid":"ec1"}}]"#
    );
    test_config(
        orthanc,
        dir,
        &[
            ("ORTHANC_EDGE__AUTH__JWT__SECRET", JWT_SECRET),
            ("ORTHANC_EDGE__AUTH__JWT__PUBLIC_KEYS", &keys),
            ("ORTHANC_EDGE__AUTH__JWT__ISSUER", ISSUER),
            ("ORTHANC_EDGE__AUTH__JWT__AUDIENCE", AUDIENCE),
            ("ORTHANC_EDGE__AUTH__JWT__LEEWAY_S", "0"),
        ],
    )
}

/// A signing key and the algorithm and `kid` it signs with.
struct Signer {
    name: &'static str,
    alg: Algorithm,
    kid: Option<&'static str>,
    key: EncodingKey,
}

impl Signer {
    fn sign(&self, claims: &Value, jwk: bool) -> String {
        let mut h = Header::new(self.alg);
        h.kid = self.kid.map(str::to_owned);
        if jwk {
            // The attacker's own public key, offered in the header: never a reason to trust it.
            let text = std::fs::read_to_string(format!("{FIXTURES}/rsa-b.jwk.json")).unwrap();
            h.jwk = Some(serde_json::from_str(&text).unwrap());
        }
        jsonwebtoken::encode(&h, claims, &self.key).unwrap()
    }
}

fn pem(file: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{file}")).unwrap()
}

/// The keys the edge trusts, each with its pinned algorithm.
static OURS: LazyLock<[Signer; 3]> = LazyLock::new(|| {
    [
        Signer {
            name: "HS256 secret",
            alg: Algorithm::HS256,
            kid: None,
            key: EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        },
        Signer {
            name: "RS256 rsa-a",
            alg: Algorithm::RS256,
            kid: None,
            key: EncodingKey::from_rsa_pem(&pem("rsa-a.key")).unwrap(),
        },
        Signer {
            name: "ES256 ec",
            alg: Algorithm::ES256,
            kid: Some("ec1"),
            key: EncodingKey::from_ec_pem(&pem("ec.key")).unwrap(),
        },
    ]
});

/// Keys and algorithms the edge must not trust: other keys, its own keys under another
/// algorithm or `kid`, public keys used as HMAC secrets (algorithm confusion).
static FORGERS: LazyLock<Vec<Signer>> = LazyLock::new(|| {
    let hs =
        |name, alg, secret: &[u8]| Signer { name, alg, kid: None, key: EncodingKey::from_secret(secret) };
    let rsa =
        |name, alg, file, kid| Signer { name, alg, kid, key: EncodingKey::from_rsa_pem(&pem(file)).unwrap() };
    vec![
        hs("HS256 keyed with the RSA public PEM", Algorithm::HS256, &pem("rsa-a.pub.pem")),
        hs("HS256 keyed with the EC public PEM", Algorithm::HS256, &pem("ec.pub.pem")),
        hs("HS256 other secret", Algorithm::HS256, b"another-secret-another-secret-0123"),
        hs("HS256 empty secret", Algorithm::HS256, b""),
        hs("HS384 our secret", Algorithm::HS384, JWT_SECRET.as_bytes()),
        hs("HS512 our secret", Algorithm::HS512, JWT_SECRET.as_bytes()),
        rsa("RS256 rsa-b", Algorithm::RS256, "rsa-b.key", None),
        rsa("RS256 rsa-b as ec1", Algorithm::RS256, "rsa-b.key", Some("ec1")),
        rsa("PS256 rsa-a", Algorithm::PS256, "rsa-a.key", None),
        rsa("RS384 rsa-a", Algorithm::RS384, "rsa-a.key", None),
        rsa("RS512 rsa-a", Algorithm::RS512, "rsa-a.key", None),
        Signer {
            name: "ES256 ec under another kid",
            alg: Algorithm::ES256,
            kid: Some("nope"),
            key: EncodingKey::from_ec_pem(&pem("ec.key")).unwrap(),
        },
    ]
});

fn claims(sub: &str, exp: u64) -> Value {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": exp})
}

/// What verifying a token must give.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Accepted as `jwt:<sub>`.
    Accepted(String),
    Expired,
    Invalid,
}

fn outcome(r: &Result<Principal, AuthError>) -> Outcome {
    match r {
        Ok(p) => Outcome::Accepted(p.name.to_string()),
        Err(AuthError::Expired) => Outcome::Expired,
        Err(AuthError::Invalid) => Outcome::Invalid,
        Err(e) => panic!("verification answered {e:?} ({}), not a documented token error", e.code()),
    }
}

/// Valid tokens, live and expired, by every trusted key: the material the attacks start from.
struct Original {
    token: String,
    outcome: Outcome,
}

fn originals() -> Vec<Original> {
    let live = now() + 3600;
    let dead = now() - 3600;
    let mut scoped = claims("scoped", live);
    scoped["instances"] = json!([synth_id('a', 1)]);
    scoped["studies"] = json!([synth_id('c', 2)]);
    let mut v: Vec<Original> = OURS
        .iter()
        .enumerate()
        .map(|(i, s)| Original {
            token: s.sign(&claims(&format!("user{i}"), live), false),
            outcome: Outcome::Accepted(format!("jwt:user{i}")),
        })
        .collect();
    v.push(Original { token: OURS[0].sign(&scoped, false), outcome: Outcome::Accepted("jwt:scoped".into()) });
    for s in OURS.iter().take(3).step_by(2) {
        v.push(Original { token: s.sign(&claims("late", dead), false), outcome: Outcome::Expired });
    }
    v
}

/// Equal to `original` for a lax verifier: the same signed text and a signature that decodes to
/// the same bytes, were base64 decoding lax about trailing bits or padding. The edge may accept
/// such a token or refuse it; it must refuse anything else.
fn same_token(t: &str, original: &str) -> bool {
    const LAX: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    t == original
        || match (t.rsplit_once('.'), original.rsplit_once('.')) {
            (Some((m1, s1)), Some((m2, s2))) => {
                m1 == m2 && LAX.decode(s1).is_ok_and(|a| LAX.decode(s2).is_ok_and(|b| a == b))
            }
            _ => false,
        }
}

/// What verifying `t` may give: an original's answer if `t` is that original, that or `Invalid`
/// if it is the same token for a lax verifier, else `Invalid`.
fn expected(t: &str, originals: &[Original]) -> Vec<Outcome> {
    match originals.iter().find(|o| same_token(t, &o.token)) {
        Some(o) if o.token == t => vec![o.outcome.clone()],
        Some(o) => vec![o.outcome.clone(), Outcome::Invalid],
        None => vec![Outcome::Invalid],
    }
}

/// One edit of a token's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, u8),
    Insert(Index, u8),
    Remove(Index, usize),
    Truncate(Index),
    /// The last `n` bytes replaced: where a base64 signature keeps its spare bits.
    Tail(usize, Vec<u8>),
    FlipBit(Index, u8),
    Append(Vec<u8>),
    SwapParts(usize, usize),
    ReplacePart(usize, Vec<u8>),
    /// That part taken from another original (signature or payload splicing).
    Splice(usize, Index),
    Repeat,
}

fn token_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()),
        2 => select(b".=+/ %&;\"\t,".to_vec()),
        1 => any::<u8>(),
    ]
}

/// Replacement parts: base64url garbage, base64url of chosen JSON, anything.
fn part() -> impl Strategy<Value = Vec<u8>> {
    let json = select(vec![
        json!({"alg": "none"}),
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"alg": "RS256", "kid": "../../etc/passwd"}),
        json!({"alg": "HS256", "crit": ["exp"]}),
        json!({"sub": "admin", "exp": 99_999_999_999u64, "iss": ISSUER, "aud": AUDIENCE}),
        json!({"sub": "admin", "exp": 99_999_999_999u64, "iss": ISSUER, "aud": AUDIENCE, "studies": []}),
    ]);
    prop_oneof![
        "[A-Za-z0-9_-]{0,80}".prop_map(String::into_bytes),
        json.prop_map(|v| b64(v.to_string()).into_bytes()),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| b64(b).into_bytes()),
        prop::collection::vec(token_byte(), 0..40),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), token_byte()).prop_map(|(i, b)| Edit::Replace(i, b)),
        2 => (any::<Index>(), token_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => (any::<Index>(), 1usize..8).prop_map(|(i, n)| Edit::Remove(i, n)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        3 => (0usize..3, prop::collection::vec(token_byte(), 0..3)).prop_map(|(n, b)| Edit::Tail(n, b)),
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Edit::FlipBit(i, bit)),
        1 => prop::collection::vec(token_byte(), 1..6).prop_map(Edit::Append),
        1 => (0usize..3, 0usize..3).prop_map(|(a, b)| Edit::SwapParts(a, b)),
        2 => (0usize..3, part()).prop_map(|(i, p)| Edit::ReplacePart(i, p)),
        2 => (0usize..3, any::<Index>()).prop_map(|(i, o)| Edit::Splice(i, o)),
        1 => Just(Edit::Repeat),
    ]
}

fn apply(token: &str, edits: &[Edit], pool: &[String]) -> Vec<u8> {
    let mut t = token.as_bytes().to_vec();
    for e in edits {
        let at = |i: &Index, extra: usize| i.index(t.len() + extra);
        match e {
            Edit::Replace(i, b) if !t.is_empty() => {
                let i = at(i, 0);
                t[i] = *b;
            }
            Edit::Insert(i, b) => t.insert(at(i, 1), *b),
            Edit::Remove(i, n) if !t.is_empty() => {
                let i = at(i, 0);
                t.drain(i..(i + n).min(t.len()));
            }
            Edit::Truncate(i) => t.truncate(at(i, 1)),
            Edit::Tail(n, b) => {
                t.truncate(t.len().saturating_sub(*n));
                t.extend_from_slice(b);
            }
            Edit::FlipBit(i, bit) if !t.is_empty() => {
                let i = at(i, 0);
                t[i] ^= 1 << bit;
            }
            Edit::Append(b) => t.extend_from_slice(b),
            Edit::SwapParts(..) | Edit::ReplacePart(..) | Edit::Splice(..) => {
                let mut parts: Vec<Vec<u8>> = t.split(|&b| b == b'.').map(<[u8]>::to_vec).collect();
                let n = parts.len();
                match e {
                    Edit::SwapParts(a, b) => parts.swap(a % n, b % n),
                    Edit::ReplacePart(i, p) => parts[i % n] = p.clone(),
                    Edit::Splice(i, o) => {
                        if let Some(p) = pool[o.index(pool.len())].split('.').nth(i % n) {
                            parts[i % n] = p.as_bytes().to_vec();
                        }
                    }
                    _ => unreachable!(),
                }
                t = parts.join(&b'.');
            }
            Edit::Repeat => {
                let copy = t.clone();
                t.push(b'.');
                t.extend(copy);
            }
            _ => {}
        }
    }
    t
}

/// A token an attacker could present.
#[derive(Debug, Clone)]
enum Attack {
    /// An original (a pool index), edited.
    Mutated(Index, Vec<Edit>),
    /// An original's payload under a new header (`alg: none`, swapped algorithms, odd `kid`s and
    /// extras), with the original, an empty or a garbage signature.
    Reheaded { of: Index, header: Value, sig: Option<Vec<u8>> },
    /// An original's claims signed again by a key or algorithm the edge does not trust.
    Resigned { of: Index, forger: Index, jwk: bool },
    /// Anything at all.
    Bytes(Vec<u8>),
    /// Three dot-separated parts.
    Parts(Vec<u8>, Vec<u8>, Vec<u8>),
}

fn header() -> impl Strategy<Value = Value> {
    let alg = select(vec![
        json!("none"),
        json!("None"),
        json!("NONE"),
        json!("nOnE"),
        json!(""),
        json!("HS256"),
        json!("HS384"),
        json!("HS512"),
        json!("RS256"),
        json!("PS256"),
        json!("ES256"),
        json!("ES384"),
        json!("EdDSA"),
        json!("hs256"),
        json!(null),
        json!(["HS256"]),
        json!(256),
    ]);
    let kid = select(vec![None, Some(json!("ec1")), Some(json!("nope")), Some(json!(1)), Some(json!(""))]);
    let extra = select(vec![
        None,
        Some(("typ", json!("JWT"))),
        Some(("jku", json!("http://127.0.0.1:9/jwks.json"))),
        Some(("x5u", json!("http://127.0.0.1:9/cert.pem"))),
        Some(("crit", json!(["b64"]))),
        Some(("b64", json!(false))),
        Some(("zip", json!("DEF"))),
    ]);
    (alg, kid, extra).prop_map(|(alg, kid, extra)| {
        let mut h = json!({ "alg": alg });
        if let Some(k) = kid {
            h["kid"] = k;
        }
        if let Some((name, v)) = extra {
            h[name] = v;
        }
        h
    })
}

fn attack() -> impl Strategy<Value = Attack> {
    let sig = prop_oneof![Just(None), Just(Some(vec![])), part().prop_map(Some)];
    prop_oneof![
        6 => (any::<Index>(), prop::collection::vec(edit(), 1..4)).prop_map(|(o, e)| Attack::Mutated(o, e)),
        2 => (any::<Index>(), header(), sig).prop_map(|(of, header, sig)| Attack::Reheaded { of, header, sig }),
        2 => (any::<Index>(), any::<Index>(), prop::bool::weighted(0.2))
            .prop_map(|(of, forger, jwk)| Attack::Resigned { of, forger, jwk }),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Attack::Bytes),
        1 => (part(), part(), part()).prop_map(|(a, b, c)| Attack::Parts(a, b, c)),
    ]
}

impl Attack {
    fn build(&self, pool: &[String]) -> Vec<u8> {
        let pick = |i: &Index| pool[i.index(pool.len())].as_str();
        match self {
            Attack::Mutated(of, edits) => apply(pick(of), edits, pool),
            Attack::Reheaded { of, header, sig } => {
                let mut parts = pick(of).split('.');
                let (_, payload, original_sig) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
                let sig = sig.clone().unwrap_or_else(|| original_sig.as_bytes().to_vec());
                let mut t = format!("{}.{payload}.", b64(header.to_string())).into_bytes();
                t.extend(sig);
                t
            }
            Attack::Resigned { of, forger, jwk } => {
                let payload = pick(of).split('.').nth(1).unwrap();
                let claims: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
                FORGERS[forger.index(FORGERS.len())].sign(&claims, *jwk).into_bytes()
            }
            Attack::Bytes(b) => b.clone(),
            Attack::Parts(a, b, c) => [a.as_slice(), b, c].join(&b'.'),
        }
    }
}

fn session_keys(cfg: &orthanc_edge::config::Config) -> SessionKeys {
    SessionKeys::from_config(&cfg.auth.jwt, cfg.jwt_secret().unwrap().as_ref()).unwrap().unwrap()
}

#[test]
fn only_untouched_tokens_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let keys = session_keys(&config("http://127.0.0.1:9", dir.path()));
    let sys = System::new();
    let originals = originals();
    let pool: Vec<String> = originals.iter().map(|o| o.token.clone()).collect();
    let verify = |t: &str| sys.block_on(keys.verify(t));
    for o in &originals {
        assert_eq!(outcome(&verify(&o.token)), o.outcome, "the originals verify as meant");
    }
    let tally = RefCell::new(BTreeMap::new());
    runner()
        .run(&attack(), |a| {
            let t = String::from_utf8_lossy(&a.build(&pool)).into_owned();
            let got = outcome(&verify(&t));
            let want = expected(&t, &originals);
            let twin = if want.len() > 1 { " (lax twin)" } else { "" };
            *tally.borrow_mut().entry(format!("{got:?}{twin}")).or_insert(0u32) += 1;
            prop_assert!(want.contains(&got), "token {} gave {:?}, not one of {:?}", t, got, want);
            Ok(())
        })
        .unwrap();
    eprintln!("outcomes: {:?}", tally.into_inner());
    // Forgeries leave the originals as they were (nothing cached under the wrong token).
    for o in &originals {
        assert_eq!(outcome(&verify(&o.token)), o.outcome);
    }
}

/// One thing wrong (or oddly right) with the claims of a token a trusted key signed.
#[derive(Debug, Clone)]
enum Claim {
    Fine,
    AudienceList,
    SubWithControls,
    ExpiredBy(u64),
    NotBeforeIn(u64),
    NoExp,
    ExpText,
    ExpFloat,
    ExpNegative,
    WrongIssuer(String),
    NoIssuer,
    IssuerListWithout,
    WrongAudience(String),
    AudienceListWithout,
    NoAudience,
    SubNumber,
    /// Resource lists: ids placed at some level; a bad id anywhere refuses the token.
    Resources(Vec<(&'static str, String)>),
    ResourcesNotAList(&'static str),
}

fn claim() -> impl Strategy<Value = Claim> {
    let level = select(vec!["studies", "series", "instances"]);
    let id = prop_oneof![
        3 => (select(vec!['a', 'b', 'c']), 0u32..4).prop_map(|(k, n)| synth_id(k, n)),
        1 => "[0-9a-fA-F-]{40,48}",
        1 => ".{0,50}",
        1 => Just("../../system".to_owned()),
        1 => Just(ID.to_uppercase()),
    ];
    prop_oneof![
        1 => Just(Claim::Fine),
        1 => Just(Claim::AudienceList),
        1 => Just(Claim::SubWithControls),
        2 => (60u64..1_000_000_000).prop_map(Claim::ExpiredBy),
        2 => (60u64..1_000_000_000).prop_map(Claim::NotBeforeIn),
        1 => Just(Claim::NoExp),
        1 => Just(Claim::ExpText),
        1 => Just(Claim::ExpFloat),
        1 => Just(Claim::ExpNegative),
        2 => "[ -~]{0,30}".prop_filter("not the issuer", |s| s != ISSUER).prop_map(Claim::WrongIssuer),
        1 => Just(Claim::NoIssuer),
        1 => Just(Claim::IssuerListWithout),
        2 => "[ -~]{0,30}".prop_filter("not the audience", |s| s != AUDIENCE).prop_map(Claim::WrongAudience),
        1 => Just(Claim::AudienceListWithout),
        1 => Just(Claim::NoAudience),
        1 => Just(Claim::SubNumber),
        4 => prop::collection::vec((level.clone(), id), 0..6).prop_map(Claim::Resources),
        1 => level.prop_map(Claim::ResourcesNotAList),
    ]
}

impl Claim {
    /// The claims, and what the edge must make of them (`None`: refused as invalid).
    fn claims(&self) -> (Value, Option<Outcome>) {
        let mut c = claims("u", now() + 3600);
        let ok = Some(Outcome::Accepted("jwt:u".into()));
        let invalid = Some(Outcome::Invalid);
        let outcome = match self {
            Claim::Fine => ok,
            Claim::AudienceList => {
                c["aud"] = json!(["someone-else", AUDIENCE]);
                ok
            }
            Claim::SubWithControls => {
                c["sub"] = json!("u\u{7}\n\u{1b}[31m");
                Some(Outcome::Accepted("jwt:u[31m".into()))
            }
            Claim::ExpiredBy(s) => {
                c["exp"] = json!(now() - s);
                Some(Outcome::Expired)
            }
            Claim::NotBeforeIn(s) => {
                c["nbf"] = json!(now() + s);
                invalid
            }
            Claim::NoExp => {
                c.as_object_mut().unwrap().remove("exp");
                invalid
            }
            Claim::ExpText => {
                c["exp"] = json!((now() + 3600).to_string());
                invalid
            }
            Claim::ExpFloat => {
                c["exp"] = json!((now() + 3600) as f64 + 0.5);
                invalid
            }
            Claim::ExpNegative => {
                c["exp"] = json!(-1);
                invalid
            }
            Claim::WrongIssuer(s) => {
                c["iss"] = json!(s);
                invalid
            }
            Claim::NoIssuer => {
                c.as_object_mut().unwrap().remove("iss");
                invalid
            }
            Claim::IssuerListWithout => {
                c["iss"] = json!(["https://evil.example", "https://other.example"]);
                invalid
            }
            Claim::WrongAudience(s) => {
                c["aud"] = json!(s);
                invalid
            }
            Claim::AudienceListWithout => {
                c["aud"] = json!(["someone-else"]);
                invalid
            }
            Claim::NoAudience => {
                c.as_object_mut().unwrap().remove("aud");
                invalid
            }
            Claim::SubNumber => {
                c["sub"] = json!(7);
                invalid
            }
            Claim::Resources(list) => {
                for (level, id) in list {
                    let entry = c.as_object_mut().unwrap().entry(*level).or_insert(json!([]));
                    entry.as_array_mut().unwrap().push(json!(id));
                }
                let valid = list.iter().all(|(_, id)| orthanc_edge::ids::OrthancId::parse(id).is_some());
                if valid {
                    ok
                } else {
                    invalid
                }
            }
            Claim::ResourcesNotAList(level) => {
                c[*level] = json!(ID);
                invalid
            }
        };
        (c, outcome)
    }
}

#[test]
fn claims_are_checked_whoever_signed_them() {
    let dir = tempfile::tempdir().unwrap();
    let keys = session_keys(&config("http://127.0.0.1:9", dir.path()));
    let sys = System::new();
    runner()
        .run(&(0..OURS.len(), claim()), |(signer, claim)| {
            let (c, want) = claim.claims();
            let token = OURS[signer].sign(&c, false);
            let r = sys.block_on(keys.verify(&token));
            prop_assert_eq!(Some(outcome(&r)), want, "{} {}", OURS[signer].name, c);
            if let (Ok(p), Claim::Resources(list)) = (&r, &claim) {
                let set = p.restriction.as_ref().map_or(0, |s| s.len());
                let distinct: HashSet<_> = list.iter().collect();
                prop_assert_eq!(set, distinct.len(), "every listed id, at its level");
            }
            Ok(())
        })
        .unwrap();
}

/// A request credential's size is capped by the request limits before any verification; the
/// verifier itself answers any size and any nesting without a panic or deep recursion.
#[test]
fn oversized_tokens_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("http://127.0.0.1:9", dir.path());
    let (max_uri, max_headers) = (cfg.server.max_uri_bytes, cfg.server.max_header_bytes);
    let keys = session_keys(&cfg);
    let sys = System::new();
    let verify = |t: &str| outcome(&sys.block_on(keys.verify(t)));
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let sign_raw = |payload: &str| {
        let header = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
        let body = b64(payload);
        let mac = jsonwebtoken::crypto::sign(
            format!("{header}.{body}").as_bytes(),
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{header}.{body}.{mac}")
    };
    let good = claims("u", now() + 3600);
    let with = |k: &str, v: &str| {
        let s = good.to_string();
        format!("{},\"{k}\":{v}}}", &s[..s.len() - 1])
    };
    for n in [64 << 10, 1 << 20] {
        for t in [
            "A".repeat(n),
            ".".repeat(n),
            format!("{}.{}.{}", "A".repeat(n), "B".repeat(n), "C".repeat(n)),
            format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(deep(n / 2))),
            format!("{}.e30.sig", b64(format!(r#"{{"alg":"HS256","x":{}}}"#, deep(n / 2)))),
            // Signed by us and nested past any recursion limit in a claim the edge reads.
            sign_raw(&with("studies", &deep(n / 4))),
        ] {
            assert_eq!(verify(&t), Outcome::Invalid, "{}…", &t[..40]);
        }
        // In a claim it does not read: skipped without recursion, the token is good.
        assert_eq!(verify(&sign_raw(&with("x", &deep(n / 4)))), Outcome::Accepted("jwt:u".into()));
    }
    // A token may list at most MAX_RESOURCES ids.
    let ids = |n: u32| Value::from((0..n).map(|i| synth_id('a', i)).collect::<Vec<_>>());
    let mut c = good.clone();
    c["instances"] = ids(MAX_RESOURCES as u32);
    assert!(matches!(verify(&OURS[0].sign(&c, false)), Outcome::Accepted(_)));
    c["instances"] = ids(MAX_RESOURCES as u32 + 1);
    assert_eq!(verify(&OURS[0].sign(&c, false)), Outcome::Invalid);

    // Through the app: over the limits is refused before authentication; just under is verified.
    let app =
        sys.block_on(async { in_process(orthanc_edge::state::AppState::build(cfg.clone()).unwrap()).await });
    let path = format!("/instances/{ID}/preview");
    let call = |req: TestRequest| {
        let r = sys.block_on(app(req));
        (r.status, r.code())
    };
    // JWT-shaped, `n` bytes.
    let token = |n: usize| format!("{}.e30.c2ln", "e".repeat(n - 9));
    let bearer =
        |n| TestRequest::get().uri(&path).insert_header(("authorization", format!("Bearer {}", token(n))));
    let cookie =
        |n| TestRequest::get().uri(&path).insert_header(("cookie", format!("{COOKIE}={}", token(n))));
    let query = |n| TestRequest::get().uri(&format!("{path}?token={}", token(n)));
    assert_eq!(call(bearer(max_headers + 1)), (431, "headers-too-large".into()));
    assert_eq!(call(cookie(max_headers + 1)), (431, "headers-too-large".into()));
    assert_eq!(call(query(max_uri + 1)), (414, "uri-too-long".into()));
    assert_eq!(call(bearer(max_headers - 100)), (401, "invalid-credentials".into()));
    assert_eq!(call(cookie(max_headers - 100)), (401, "invalid-credentials".into()));
    assert_eq!(call(query(max_uri - 100)), (401, "invalid-credentials".into()));
}

/// The app in process before a fake Orthanc, and the instance, series and study ids of two
/// unrelated instances the fake knows.
fn world(
    sys: &SystemRunner,
    dir: &std::path::Path,
) -> (FakeOrthanc, impl Fn(TestRequest) -> LocalBoxFuture<'static, Reply>, [[String; 3]; 2]) {
    let (fake, app) = sys.block_on(async {
        let fake = FakeOrthanc::start().await;
        let state = orthanc_edge::state::AppState::build(config(&fake.url, dir)).unwrap();
        (fake, in_process(state).await)
    });
    let ids = [1, 2].map(|n| [synth_id('a', n), synth_id('b', n), synth_id('c', n)]);
    for [i, s, st] in &ids {
        fake.add_instance(i, s, st);
    }
    (fake, app, ids)
}

/// How a request carries a token.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    Query,
    Bearer,
    Cookie,
}

fn carrier() -> impl Strategy<Value = Carrier> {
    select(vec![Carrier::Query, Carrier::Bearer, Carrier::Cookie])
}

impl Carrier {
    /// The request, and the token the edge reads from it (`None`: no token at all).
    fn carry(self, req: TestRequest, uri: &str, t: &[u8]) -> (TestRequest, Option<String>) {
        use actix_web::http::header::HeaderValue;
        let text = || String::from_utf8_lossy(t).into_owned();
        let sep = if uri.contains('?') { '&' } else { '?' };
        let by_query = |req: TestRequest| {
            let token = text();
            (req.uri(&format!("{uri}{sep}token={}", enc(&token))), Some(token))
        };
        match self {
            Carrier::Query => by_query(req),
            Carrier::Bearer => {
                let mut v = b"Bearer ".to_vec();
                v.extend_from_slice(t);
                let Ok(v) = HeaderValue::from_bytes(&v) else { return by_query(req) };
                // `Bearer` then one space; the rest, trimmed, when it is visible ASCII.
                let read = v.to_str().ok().map(|s| s["Bearer ".len()..].trim().to_owned());
                (req.uri(uri).insert_header(("authorization", v)), read.filter(|s| !s.is_empty()))
            }
            Carrier::Cookie => {
                let mut v = format!("{COOKIE}=").into_bytes();
                v.extend_from_slice(t);
                let Ok(v) = HeaderValue::from_bytes(&v) else { return by_query(req) };
                // Up to the first `;`, trimmed of white space and quotes.
                let value = t.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
                let value = std::str::from_utf8(value).ok().map(|s| s.trim_matches('"').to_owned());
                (req.uri(uri).insert_header(("cookie", v)), value.filter(|s| !s.is_empty()))
            }
        }
    }
}

/// What a signed-link token is tried on.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Instance `n`'s preview, or its frame 0.
    Image(usize, bool),
    Series(usize),
    Study(usize),
    Sign,
    Session,
    Warm,
    Purge(usize),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => (0usize..2, any::<bool>()).prop_map(|(n, f)| Target::Image(n, f)),
        1 => (0usize..2).prop_map(Target::Series),
        1 => (0usize..2).prop_map(Target::Study),
        1 => Just(Target::Sign),
        1 => Just(Target::Session),
        1 => Just(Target::Warm),
        1 => (0usize..2).prop_map(Target::Purge),
    ]
}

fn mint_link(
    sys: &SystemRunner,
    app: &impl Fn(TestRequest) -> LocalBoxFuture<'static, Reply>,
    instance: &str,
) -> String {
    let req = TestRequest::post()
        .uri("/auth/sign")
        .insert_header(("x-api-key", MINT_KEY))
        .insert_header(("content-type", "application/json"))
        .set_payload(json!({"instances": [instance], "sizes": [{"w": 64, "h": 64}]}).to_string());
    let r = sys.block_on(app(req));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let url = v["links"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("/instances/{instance}/preview?w=64&h=64&token=")), "{url}");
    url.split_once("token=").unwrap().1.to_owned()
}

#[test]
fn a_signed_link_grants_its_instance_and_nothing_else() {
    let sys = System::new();
    let dir = tempfile::tempdir().unwrap();
    let (fake, app, ids) = world(&sys, dir.path());
    let links: Vec<String> = ids.iter().map(|[i, ..]| mint_link(&sys, &app, i)).collect();
    let mutated = (any::<Index>(), prop::collection::vec(edit(), 0..3));
    let statuses = RefCell::new(BTreeMap::new());
    runner()
        .run(&(mutated, target(), carrier()), |((of, edits), target, carrier)| {
            let t = apply(&links[of.index(links.len())], &edits, &links);
            let (uri, method) = match target {
                // The link's own URL; the same size on the frame path is another route.
                Target::Image(n, false) => (format!("/instances/{}/preview?w=64&h=64", ids[n][0]), "GET"),
                Target::Image(n, true) => {
                    (format!("/instances/{}/frames/0/preview?w=64&h=64", ids[n][0]), "GET")
                }
                Target::Series(n) => (format!("/series/{}/preview", ids[n][1]), "GET"),
                Target::Study(n) => (format!("/studies/{}/grid.json", ids[n][2]), "GET"),
                Target::Sign => ("/auth/sign".to_owned(), "POST"),
                Target::Session => ("/auth/session".to_owned(), "POST"),
                Target::Warm => ("/warm".to_owned(), "POST"),
                Target::Purge(n) => (format!("/cache/instances/{}", ids[n][0]), "DELETE"),
            };
            let body = match target {
                Target::Sign => json!({"instances": [ids[1][0]]}).to_string(),
                Target::Warm => json!({"studies": [ids[1][2]], "presets": ["thumb"]}).to_string(),
                _ => String::new(),
            };
            let req = TestRequest::default()
                .method(method.parse().unwrap())
                .insert_header(("content-type", "application/json"))
                .set_payload(body);
            let (req, read) = carrier.carry(req, &uri, &t);
            // Whose link the edge was given, if any.
            let holder = read.as_deref().and_then(|r| links.iter().position(|l| same_token(r, l)));
            let exact = holder.is_some_and(|h| read.as_deref() == Some(links[h].as_str()));
            let status = match (target, holder) {
                (_, None) => 401,
                (Target::Image(n, false), Some(h)) if n == h => 200,
                // A link serves its one URL: not another frame path, not a session cookie.
                (_, Some(_)) => 403,
            };
            let r = sys.block_on(app(req));
            *statuses.borrow_mut().entry(r.status).or_insert(0u32) += 1;
            let code = r.code();
            prop_assert!(
                r.status == status || (!exact && r.status == 401),
                "{:?} {:?} {} → {} {}, not {}",
                target,
                carrier,
                String::from_utf8_lossy(&t),
                r.status,
                code,
                status
            );
            match r.status {
                401 => prop_assert!(code == "invalid-credentials" || code == "unauthenticated", "{}", code),
                403 => prop_assert_eq!(code.as_str(), "forbidden"),
                _ => {}
            }
            Ok(())
        })
        .unwrap();
    eprintln!("statuses: {:?}", statuses.into_inner());
    sys.block_on(fake.stop());
}

#[test]
fn resource_claims_grant_exactly_their_subtree() {
    let sys = System::new();
    let dir = tempfile::tempdir().unwrap();
    let (fake, app, ids) = world(&sys, dir.path());
    const LEVELS: [&str; 3] = ["instances", "series", "studies"];
    // For each of the six ids: not listed, or listed at one of the three levels.
    let placement = prop::collection::vec(prop::option::weighted(0.4, 0usize..3), 6);
    let strategy = (placement, any::<bool>(), 0usize..2, 0usize..3, carrier());
    let allowed_count = RefCell::new([0u32; 2]);
    runner()
        .run(&strategy, |(placement, empty_lists, n, level, carrier)| {
            let mut c = claims("scoped", now() + 3600);
            if empty_lists {
                for l in LEVELS {
                    c[l] = json!([]);
                }
            }
            let listed = |id: &str, at: usize| -> bool {
                let slot = placement[ids.iter().flatten().position(|x| x == id).unwrap()];
                slot == Some(at)
            };
            for (k, id) in ids.iter().flatten().enumerate() {
                if let Some(at) = placement[k] {
                    let entry = c.as_object_mut().unwrap().entry(LEVELS[at]).or_insert(json!([]));
                    entry.as_array_mut().unwrap().push(json!(id));
                }
            }
            let restricted =
                c.get("instances").is_some() || c.get("series").is_some() || c.get("studies").is_some();
            let [i, s, st] = &ids[n];
            // The documented rule: a resource is covered when it, its series or its study is listed.
            let allowed = !restricted
                || match level {
                    0 => listed(i, 0) || listed(s, 1) || listed(st, 2),
                    1 => listed(s, 1) || listed(st, 2),
                    _ => listed(st, 2),
                };
            let uri = match level {
                0 => format!("/instances/{i}/preview"),
                1 => format!("/series/{s}/preview"),
                _ => format!("/studies/{st}/grid.json"),
            };
            let token = OURS[n].sign(&c, false);
            let (req, _) = carrier.carry(TestRequest::get(), &uri, token.as_bytes());
            let r = sys.block_on(app(req));
            allowed_count.borrow_mut()[usize::from(allowed)] += 1;
            if allowed {
                prop_assert!(r.status != 401 && r.status != 403, "{} {} → {} {}", uri, c, r.status, r.code());
                if level == 0 {
                    prop_assert_eq!(r.status, 200);
                }
            } else {
                prop_assert_eq!((r.status, r.code()), (403, "forbidden".to_owned()), "{} {}", uri, c);
            }
            Ok(())
        })
        .unwrap();
    let allowed_count = allowed_count.into_inner();
    eprintln!("denied, allowed: {allowed_count:?}");
    assert!(allowed_count.iter().all(|&n| n > 0), "both answers were exercised");
    sys.block_on(fake.stop());
}
