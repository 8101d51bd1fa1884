//! Browser-ready authorization against a fake Orthanc: session tokens and their sources, keys and
//! JWKS rotation, resource scopes, signed links, the session cookie, delegated decisions, CORS,
//! the failed-authentication limit.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn signed(alg: Algorithm, key_file: &str, kid: Option<&str>, claims: Value) -> String {
    let pem = std::fs::read(format!("{FIXTURES}/{key_file}")).unwrap();
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

const NO_LEEWAY: (&str, &str) = ("ORTHANC_EDGE__AUTH__JWT__LEEWAY_S", "0");

#[actix_web::test]
async fn session_tokens_from_bearer_cookie_and_query() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).jwt_secret(JWT_SECRET).envs(&[NO_LEEWAY]).start().await;
    let url = edge.preview_url(ID);
    let good = hs(json!({"sub": "alice", "exp": now() + 300}));

    assert_eq!(bearer(&url, &good).await, ok());
    assert_eq!(with_cookie(&url, &format!("other=1; orthanc_edge_session={good}")).await, ok());
    assert_eq!(plain(&format!("{url}?token={good}")).await, ok());
    // The token is the auth layer's: variant parsing never sees it, Orthanc never gets it.
    let q = client()
        .get(format!("{url}?quality=50&token={good}"))
        .header("Accept", "image/jpeg")
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), 200);
    assert_eq!(header(&q, "content-type"), "image/jpeg");
    assert!(fake.paths().iter().all(|p| !p.contains("token")));
    // An explicit token beats a stale cookie; two tokens are refused rather than guessed.
    assert_eq!(
        with_cookie(&format!("{url}?token={good}"), "orthanc_edge_session=stale.stale.stale").await,
        ok()
    );
    assert_eq!(plain(&format!("{url}?token={good}&token={good}")).await, err(401, "invalid-credentials"));
    // API keys are unchanged, also as Bearer.
    assert_eq!(bearer(&url, PREVIEW_KEY).await, ok());

    let expired = hs(json!({"sub": "a", "exp": now() - 5}));
    let early = hs(json!({"sub": "a", "exp": now() + 300, "nbf": now() + 120}));
    let no_exp = hs(json!({"sub": "a"}));
    let wrong_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "a", "exp": now() + 300}),
        &EncodingKey::from_secret(b"some-other-secret-some-other-secret-0"),
    )
    .unwrap();
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let b64 = |v: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    };
    let alg_none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&json!({"sub": "a", "exp": now() + 300}).to_string())
    );
    for (token, code) in [
        (&expired, "token-expired"),
        (&early, "invalid-credentials"),
        (&no_exp, "invalid-credentials"),
        (&wrong_key, "invalid-credentials"),
        (&tampered, "invalid-credentials"),
        (&alg_none, "invalid-credentials"),
    ] {
        assert_eq!(bearer(&url, token).await, err(401, code), "bearer");
        assert_eq!(
            with_cookie(&url, &format!("orthanc_edge_session={token}")).await,
            err(401, code),
            "cookie"
        );
        assert_eq!(plain(&format!("{url}?token={token}")).await, err(401, code), "query");
    }
    assert_eq!(plain(&url).await, err(401, "unauthenticated"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn rs256_and_es256_public_keys_are_pinned_to_their_algorithm() {
    let fake = FakeOrthanc::start().await;
    let keys = format!(
        r#"[{{"path":"{FIXTURES}/rsa-a.pub.pem","alg":"RS256"}},{{"path":"{FIXTURES}/ec.pub.pem","alg":"ES256","kid":"ec1"}}]"#
    );
    let edge =
        TestEdge::builder(&fake.url).envs(&[("ORTHANC_EDGE__AUTH__JWT__PUBLIC_KEYS", &keys)]).start().await;
    let url = edge.preview_url(ID);
    let claims = json!({"sub": "idp-user", "exp": now() + 300});
    let rs = signed(Algorithm::RS256, "rsa-a.key", None, claims.clone());
    assert_eq!(bearer(&url, &rs).await, ok());
    let es = signed(Algorithm::ES256, "ec.key", Some("ec1"), claims.clone());
    assert_eq!(bearer(&url, &es).await, ok());
    let es_other_kid = signed(Algorithm::ES256, "ec.key", Some("nope"), claims.clone());
    assert_eq!(bearer(&url, &es_other_kid).await, err(401, "invalid-credentials"));
    let other_rsa = signed(Algorithm::RS256, "rsa-b.key", None, claims.clone());
    assert_eq!(bearer(&url, &other_rsa).await, err(401, "invalid-credentials"));
    // Algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    let public_pem = std::fs::read(format!("{FIXTURES}/rsa-a.pub.pem")).unwrap();
    let confused =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&public_pem))
            .unwrap();
    assert_eq!(bearer(&url, &confused).await, err(401, "invalid-credentials"));
    // PS256 with the same RSA key: not the algorithm the key is pinned to.
    let ps = signed(Algorithm::PS256, "rsa-a.key", None, claims);
    assert_eq!(bearer(&url, &ps).await, err(401, "invalid-credentials"));
    edge.stop().await;
    fake.stop().await;
}

fn jwks(files: &[&str]) -> String {
    let keys: Vec<Value> = files
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{f}")).unwrap()).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

#[actix_web::test]
async fn jwks_rotation_is_followed() {
    let fake = FakeOrthanc::start().await;
    let idp = Canned::start(Answer::status(200).body(jwks(&["rsa-a.jwk.json"]))).await;
    let edge = TestEdge::builder(&fake.url)
        .envs(&[
            ("ORTHANC_EDGE__AUTH__JWT__JWKS_URL", &idp.url),
            ("ORTHANC_EDGE__AUTH__JWT__JWKS_COOLDOWN_S", "0"),
            ("ORTHANC_EDGE__AUTH__JWT__JWKS_REFRESH_S", "3600"),
        ])
        .start()
        .await;
    let url = edge.preview_url(ID);
    let claims = json!({"sub": "kc-user", "exp": now() + 300});
    let a = signed(Algorithm::RS256, "rsa-a.key", Some("key-a"), claims.clone());
    let b = signed(Algorithm::RS256, "rsa-b.key", Some("key-b"), claims.clone());
    assert_eq!(bearer(&url, &a).await, ok());
    assert_eq!(bearer(&url, &b).await, err(401, "invalid-credentials"));
    // The IdP rotates: key-b in, key-a out. An unknown kid triggers a refetch.
    idp.set(Answer::status(200).body(jwks(&["rsa-b.jwk.json"])));
    assert_eq!(bearer(&url, &b).await, ok());
    assert_eq!(bearer(&url, &a).await, err(401, "invalid-credentials"));
    // A JWKS outage keeps the keys the edge has.
    idp.set(Answer::status(500));
    assert_eq!(bearer(&url, &a).await, err(401, "invalid-credentials"));
    assert_eq!(bearer(&url, &b).await, ok());
    // A known kid costs no fetch.
    let calls = idp.calls();
    for _ in 0..10 {
        assert_eq!(bearer(&url, &b).await, ok());
    }
    assert_eq!(idp.calls(), calls);
    edge.stop().await;
    idp.stop().await;
    fake.stop().await;
}

/// I1 and I2 in different series of study ST1; I3 in study ST2.
struct Tree {
    i1: String,
    i2: String,
    i3: String,
    s1: String,
    st1: String,
}

fn tree(fake: &FakeOrthanc) -> Tree {
    let t = Tree {
        i1: synth_id('a', 1),
        i2: synth_id('a', 2),
        i3: synth_id('a', 3),
        s1: synth_id('b', 1),
        st1: synth_id('c', 1),
    };
    fake.add_instance(&t.i1, &t.s1, &t.st1);
    fake.add_instance(&t.i2, &synth_id('b', 2), &t.st1);
    fake.add_instance(&t.i3, &synth_id('b', 3), &synth_id('c', 2));
    t
}

#[actix_web::test]
async fn resource_claims_allow_and_deny_by_instance_series_and_study() {
    let fake = FakeOrthanc::start().await;
    let t = tree(&fake);
    let edge = TestEdge::builder(&fake.url).jwt_secret(JWT_SECRET).start().await;
    let u = |id: &str| edge.preview_url(id);
    let exp = now() + 300;

    let by_instance = hs(json!({"sub": "a", "exp": exp, "instances": [t.i1]}));
    assert_eq!(bearer(&u(&t.i1), &by_instance).await, ok());
    assert_eq!(bearer(&u(&t.i2), &by_instance).await, err(403, "forbidden"));
    assert_eq!(fake.parent_lookups(), 0, "an instance-only token needs no lookup");

    let by_series = hs(json!({"sub": "a", "exp": exp, "series": [t.s1]}));
    assert_eq!(bearer(&u(&t.i1), &by_series).await, ok());
    assert_eq!(bearer(&u(&t.i2), &by_series).await, err(403, "forbidden"));

    let by_study = hs(json!({"sub": "a", "exp": exp, "studies": [t.st1]}));
    assert_eq!(bearer(&u(&t.i1), &by_study).await, ok());
    assert_eq!(bearer(&u(&t.i2), &by_study).await, ok());
    assert_eq!(bearer(&u(&t.i3), &by_study).await, err(403, "forbidden"));
    // Unknown to Orthanc: a scoped token learns nothing, not even that it does not exist.
    assert_eq!(bearer(&u(ID2), &by_study).await, err(403, "forbidden"));

    // Parents are asked once: more requests, no more lookups.
    let lookups = fake.parent_lookups();
    for _ in 0..5 {
        for id in [&t.i1, &t.i2, &t.i3] {
            bearer(&u(id), &by_study).await;
            bearer(&u(id), &by_series).await;
        }
    }
    assert_eq!(fake.parent_lookups(), lookups);

    let empty = hs(json!({"sub": "a", "exp": exp, "studies": []}));
    assert_eq!(bearer(&u(&t.i1), &empty).await, err(403, "forbidden"));
    let free = hs(json!({"sub": "a", "exp": exp}));
    assert_eq!(bearer(&u(&t.i3), &free).await, ok());
    edge.stop().await;
    fake.stop().await;
}

async fn post(url: &str, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut r = client().post(url).json(&body);
    if let Some(k) = key {
        r = r.header("X-Api-Key", k);
    }
    r.send().await.unwrap()
}

#[actix_web::test]
async fn signed_links_work_for_their_instance_only_and_expire() {
    let fake = FakeOrthanc::start().await;
    let t = tree(&fake);
    let edge = TestEdge::builder(&fake.url).jwt_secret(JWT_SECRET).envs(&[NO_LEEWAY]).start().await;
    let sign = format!("{}/auth/sign", edge.url);

    let r = post(&sign, Some(MINT_KEY), json!({"instances": [t.i1, t.i2], "lifetime_s": 2, "sub": "dr-who"}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "cache-control"), "no-store");
    let v: Value = r.json().await.unwrap();
    let links = v["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert!(v["expires_at"].as_u64().unwrap() <= now() + 2);
    let link = |i: usize| format!("{}{}", edge.url, links[i]["url"].as_str().unwrap());
    assert_eq!(links[0]["instance"], t.i1.as_str());
    assert!(links[0]["url"].as_str().unwrap().starts_with(&format!("/instances/{}/preview?token=", t.i1)));
    assert_eq!(plain(&link(0)).await, ok());
    assert_eq!(plain(&link(1)).await, ok());
    // The link's token is scoped to its instance: useless for another one.
    let token0 = link(0).split("token=").nth(1).unwrap().to_owned();
    assert_eq!(plain(&format!("{}?token={token0}", edge.preview_url(&t.i2))).await, err(403, "forbidden"));
    // A link token cannot mint.
    let r =
        client().post(&sign).bearer_auth(&token0).json(&json!({"instances": [t.i3]})).send().await.unwrap();
    assert_eq!(outcome(r).await, err(403, "forbidden"));

    // Sizes become variant parameters of each link.
    let r = post(
        &sign,
        Some(MINT_KEY),
        json!({"instances": [t.i1], "sizes": [{"w": 128, "h": 128}, {"w": 256, "h": 200}]}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    let urls: Vec<&str> = v["links"].as_array().unwrap().iter().map(|l| l["url"].as_str().unwrap()).collect();
    assert_eq!(urls.len(), 2);
    assert!(urls[0].contains("?w=128&h=128&token="));
    assert!(urls[1].contains("?w=256&h=200&token="));

    // Refusals.
    assert_eq!(
        outcome(post(&sign, Some(PREVIEW_KEY), json!({"instances": [t.i1]})).await).await,
        err(403, "forbidden")
    );
    assert_eq!(
        outcome(post(&sign, None, json!({"instances": [t.i1]})).await).await,
        err(401, "unauthenticated")
    );
    assert_eq!(
        outcome(post(&sign, Some(MINT_KEY), json!({"instances": ["../x"]})).await).await,
        err(400, "bad-id")
    );
    assert_eq!(
        outcome(post(&sign, Some(MINT_KEY), json!({"instances": []})).await).await,
        err(400, "bad-param")
    );
    assert_eq!(
        outcome(post(&sign, Some(MINT_KEY), json!({"instances": [t.i1], "lifetime_s": 99_999_999})).await)
            .await,
        err(400, "bad-param")
    );
    assert_eq!(
        outcome(post(&sign, Some(MINT_KEY), json!({"instancez": [t.i1]})).await).await,
        err(400, "bad-param")
    );
    let r = client().post(&sign).header("X-Api-Key", MINT_KEY).body("{not json").send().await.unwrap();
    assert_eq!(outcome(r).await, err(400, "bad-param"));
    let r = client().get(&sign).header("X-Api-Key", MINT_KEY).send().await.unwrap();
    assert_eq!(outcome(r).await, err(405, "method-not-allowed"));

    // Links expire.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(plain(&link(0)).await, err(401, "token-expired"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn minting_is_off_without_a_secret() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let r = post(&format!("{}/auth/sign", edge.url), Some(MINT_KEY), json!({"instances": [ID]})).await;
    assert_eq!(outcome(r).await, err(404, "minting-disabled"));
    // And a `token` parameter is simply invalid.
    assert_eq!(
        plain(&format!("{}?token=a.b.c", edge.preview_url(ID))).await,
        err(401, "invalid-credentials")
    );
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn session_endpoint_sets_an_httponly_cookie() {
    let fake = FakeOrthanc::start().await;
    let t = tree(&fake);
    let edge = TestEdge::builder(&fake.url).jwt_secret(JWT_SECRET).start().await;
    let session = format!("{}/auth/session", edge.url);
    let r =
        post(&session, Some(MINT_KEY), json!({"sub": "alice", "studies": [t.st1], "lifetime_s": 600})).await;
    assert_eq!(r.status(), 200);
    let set_cookie = header(&r, "set-cookie").to_owned();
    let v: Value = r.json().await.unwrap();
    let token = v["token"].as_str().unwrap();
    assert!(set_cookie.starts_with(&format!("orthanc_edge_session={token};")), "{set_cookie}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/instances", "Max-Age="] {
        assert!(set_cookie.contains(attr), "{attr} in {set_cookie}");
    }
    let cookie = format!("orthanc_edge_session={token}");
    assert_eq!(with_cookie(&edge.preview_url(&t.i2), &cookie).await, ok());
    assert_eq!(with_cookie(&edge.preview_url(&t.i3), &cookie).await, err(403, "forbidden"));
    // A browser holding a token turns it into the cookie: same token, no new rights.
    let r = client().post(&session).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "set-cookie").starts_with(&format!("orthanc_edge_session={token};")));
    // A preview-only API key may not mint; logging out expires the cookie.
    let r = post(&session, Some(PREVIEW_KEY), json!({})).await;
    assert_eq!(outcome(r).await, err(403, "forbidden"));
    let r = client().delete(&session).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(header(&r, "set-cookie").contains("Max-Age=0"));
    edge.stop().await;
    fake.stop().await;
}

fn delegate_env<'a>(validator: &'a str, decision: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ORTHANC_EDGE__AUTH__DELEGATE__URL", validator),
        ("ORTHANC_EDGE__AUTH__DELEGATE__DECISION", decision),
        ("ORTHANC_EDGE__AUTH__DELEGATE__TIMEOUT_MS", "500"),
    ]
}

#[actix_web::test]
async fn delegated_credential_decision_is_one_call_per_user_per_ttl() {
    let fake = FakeOrthanc::start().await;
    let validator = Canned::start(Answer::status(200)).await;
    let edge = TestEdge::builder(&fake.url).envs(&delegate_env(&validator.url, "credential")).start().await;
    let c = client();
    // 100 different images, 10 at a time, for one user.
    let ids: Vec<String> = (0..100).map(|n| synth_id('d', n)).collect();
    for chunk in ids.chunks(10) {
        let reqs = chunk
            .iter()
            .map(|id| c.get(edge.preview_url(id)).header("Cookie", "sessionid=alice-session").send());
        for r in futures_util::future::join_all(reqs).await {
            assert_eq!(r.unwrap().status(), 200);
        }
    }
    assert_eq!(validator.calls(), 1, "one validator call for 100 images of one user");
    let seen = &validator.seen()[0];
    assert_eq!(seen["cookie"], "sessionid=alice-session");
    assert_eq!(seen["x-original-method"], "GET");
    assert!(seen["x-original-uri"].starts_with("/instances/"));
    // Another user is another call.
    assert_eq!(with_cookie(&edge.preview_url(ID), "sessionid=bob-session").await, ok());
    assert_eq!(validator.calls(), 2);
    // The validator's max-age sets the TTL.
    validator.set(Answer::status(200).header("Cache-Control", "max-age=1"));
    assert_eq!(with_cookie(&edge.preview_url(ID), "sessionid=carol").await, ok());
    assert_eq!(with_cookie(&edge.preview_url(ID2), "sessionid=carol").await, ok());
    assert_eq!(validator.calls(), 3);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(with_cookie(&edge.preview_url(ID2), "sessionid=carol").await, ok());
    assert_eq!(validator.calls(), 4);
    // No forwarded header at all: 401 without bothering the validator.
    assert_eq!(plain(&edge.preview_url(ID)).await, err(401, "unauthenticated"));
    assert_eq!(validator.calls(), 4);
    edge.stop().await;
    validator.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn delegated_resource_decisions_and_allowed_studies_header() {
    let fake = FakeOrthanc::start().await;
    let t = tree(&fake);
    let study_ids: Vec<String> = (0..100).map(|n| synth_id('e', n)).collect();
    for (n, id) in study_ids.iter().enumerate() {
        fake.add_instance(id, &synth_id('f', n as u32 % 4), &t.st1);
    }
    let validator = Canned::start(Answer::status(200)).await;
    let edge = TestEdge::builder(&fake.url).envs(&delegate_env(&validator.url, "resource")).start().await;
    let cookie = "sessionid=alice";
    // Per resource (nginx auth_request semantics): each image asks once, then it is cached.
    assert_eq!(with_cookie(&edge.preview_url(&t.i1), cookie).await, ok());
    assert_eq!(with_cookie(&edge.preview_url(&t.i1), cookie).await, ok());
    assert_eq!(with_cookie(&edge.preview_url(&t.i2), cookie).await, ok());
    assert_eq!(validator.calls(), 2);
    // A validator that names the user's studies: one call covers the 100 images of that study,
    // and narrows: an image of another study is refused without asking again.
    validator.set(Answer::status(200).header("X-Edge-Allowed-Studies", &t.st1));
    for id in &study_ids {
        assert_eq!(with_cookie(&edge.preview_url(id), "sessionid=dana").await, ok());
    }
    assert_eq!(validator.calls(), 3);
    assert_eq!(with_cookie(&edge.preview_url(&t.i3), "sessionid=dana").await, err(403, "forbidden"));
    assert_eq!(validator.calls(), 3);
    edge.stop().await;
    validator.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn delegated_denials_and_validator_failures_fail_closed() {
    let fake = FakeOrthanc::start().await;
    let validator = Canned::start(Answer::status(401)).await;
    let edge = TestEdge::builder(&fake.url).envs(&delegate_env(&validator.url, "resource")).start().await;
    let url = edge.preview_url(ID);
    assert_eq!(with_cookie(&url, "sessionid=u1").await, err(401, "invalid-credentials"));
    validator.set(Answer::status(403));
    assert_eq!(with_cookie(&url, "sessionid=u2").await, err(403, "forbidden"));
    // A Bearer value that is neither an API key nor a JWT goes to the validator too.
    assert_eq!(bearer(&url, "opaque-app-token").await, err(403, "forbidden"));
    for answer in [
        Answer::status(500),
        Answer::status(302).header("Location", "/login"),
        Answer { delay: Duration::from_millis(1500), ..Answer::status(200) },
    ] {
        validator.set(answer.clone());
        let r = client().get(&url).header("Cookie", "sessionid=u3").send().await.unwrap();
        assert_eq!(header(&r, "retry-after"), "1");
        assert_eq!(outcome(r).await, err(503, "auth-unavailable"), "{answer:?}");
    }
    // Failures are not cached: the validator is back, the same user gets in.
    validator.set(Answer::status(200));
    assert_eq!(with_cookie(&url, "sessionid=u3").await, ok());
    let calls = validator.calls();
    validator.stop().await;
    // Validator down: still cached decisions work, new ones fail closed.
    assert_eq!(with_cookie(&url, "sessionid=u3").await, ok());
    assert_eq!(with_cookie(&url, "sessionid=u4").await, err(503, "auth-unavailable"));
    assert!(calls >= 6);
    assert_eq!(fake.image_requests(), 1, "no image fetched for a denial");
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn cors_preflight_and_simple_requests() {
    let fake = FakeOrthanc::start().await;
    let viewer = "http://viewer.test:8000";
    let origins = format!(r#"["{viewer}"]"#);
    let edge =
        TestEdge::builder(&fake.url).envs(&[("ORTHANC_EDGE__CORS__ALLOWED_ORIGINS", &origins)]).start().await;
    let url = edge.preview_url(ID);
    let c = client();
    let pre = c
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", viewer)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204, "preflight needs no credentials");
    assert_eq!(header(&pre, "access-control-allow-origin"), viewer);
    assert_eq!(header(&pre, "access-control-allow-credentials"), "true");
    assert_eq!(header(&pre, "access-control-max-age"), "600");
    assert!(header(&pre, "access-control-allow-headers").contains("Authorization"));
    assert!(header(&pre, "access-control-allow-methods").contains("GET"));
    assert!(header(&pre, "vary").contains("Origin"));

    let bad = c
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "http://evil.test")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(bad.headers().get("access-control-allow-origin").is_none());
    assert_eq!(outcome(bad).await, err(403, "origin-not-allowed"));

    let simple = c.get(&url).header("Origin", viewer).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(simple.status(), 200);
    assert_eq!(header(&simple, "access-control-allow-origin"), viewer);
    assert_eq!(header(&simple, "vary"), "Accept, Origin");
    assert!(header(&simple, "access-control-expose-headers").contains("X-Cache"));
    // Errors carry CORS headers too, so the viewer can read the JSON.
    let denied = c.get(&url).header("Origin", viewer).send().await.unwrap();
    assert_eq!(header(&denied, "access-control-allow-origin"), viewer);
    assert_eq!(outcome(denied).await, err(401, "unauthenticated"));
    let other = c
        .get(&url)
        .header("Origin", "http://evil.test")
        .header("X-Api-Key", PREVIEW_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert!(other.headers().get("access-control-allow-origin").is_none());
    assert!(header(&other, "vary").contains("Origin"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn failed_authentications_are_rate_limited_per_address() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url)
        .jwt_secret(JWT_SECRET)
        .envs(&[
            ("ORTHANC_EDGE__AUTH__RATE_LIMIT__FAILURES_PER_MINUTE", "6"),
            ("ORTHANC_EDGE__AUTH__RATE_LIMIT__BURST", "3"),
        ])
        .start()
        .await;
    let url = edge.preview_url(ID);
    let c = client();
    // Expired tokens (a good signature, a late browser) and missing credentials do not count.
    let expired = hs(json!({"sub": "a", "exp": now() - 3600}));
    for _ in 0..10 {
        assert_eq!(bearer(&url, &expired).await, err(401, "token-expired"));
        assert_eq!(plain(&url).await, err(401, "unauthenticated"));
    }
    for _ in 0..3 {
        let r = c.get(&url).header("X-Api-Key", "guess").send().await.unwrap();
        assert_eq!(outcome(r).await, err(401, "invalid-credentials"));
    }
    let r = c.get(&url).header("X-Api-Key", "guess").send().await.unwrap();
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(outcome(r).await, err(429, "too-many-failures"));
    // While cooling down even the right key is refused: no oracle for a guesser.
    let r = c.get(&url).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(outcome(r).await, err(429, "too-many-failures"));
    edge.stop().await;
    fake.stop().await;
}

/// Status, code and message of a refusal (`(200, "", "")` for a success).
async fn refusal(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    if status == 200 || status == 204 {
        return (status, String::new(), String::new());
    }
    let v: Value = r.json().await.unwrap();
    (status, v["code"].as_str().unwrap().to_owned(), v["message"].as_str().unwrap().to_owned())
}

/// The claims of a JWT, read without verifying it.
fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap().split('&').next().unwrap().to_owned()
}

#[actix_web::test]
async fn signed_links_serve_only_their_own_size_route_and_frame() {
    let fake = FakeOrthanc::start().await;
    let t = tree(&fake);
    fake.add_uid("1.2.3", "Series", &t.s1);
    let edge = TestEdge::builder(&fake.url).jwt_secret(JWT_SECRET).start().await;
    let sign = format!("{}/auth/sign", edge.url);
    let r = post(&sign, Some(MINT_KEY), json!({"instances": [t.i1], "sizes": [{"w": 64, "h": 64}]})).await;
    let v: Value = r.json().await.unwrap();
    let own = format!("{}{}", edge.url, v["links"][0]["url"].as_str().unwrap());
    let token = token_of(&own);
    assert_eq!(
        claims_of(&token)["link"],
        json!({"route": "instance-preview", "params": {"w": "64", "h": "64"}})
    );
    assert_eq!(plain(&own).await, ok());
    // Format negotiation by Accept stays open; the token as Bearer on the same URL too.
    let r = client().get(&own).header("Accept", "image/jpeg").send().await.unwrap();
    assert_eq!(outcome(r).await, ok());
    let bare = format!("{}?w=64&h=64", edge.preview_url(&t.i1));
    assert_eq!(bearer(&bare, &token).await, ok());
    let inst = edge.preview_url(&t.i1);
    let base = format!("{}/instances/{}", edge.url, t.i1);
    for (what, url) in [
        ("bigger", format!("{inst}?w=2048&h=64&token={token}")),
        ("format", format!("{inst}?w=64&h=64&format=png&token={token}")),
        ("quality", format!("{inst}?w=64&h=64&q=90&token={token}")),
        ("fit", format!("{inst}?w=64&h=64&fit=cover&token={token}")),
        ("preset", format!("{inst}?preset=thumb&token={token}")),
        ("full preview", format!("{inst}?token={token}")),
        ("orthanc quality", format!("{inst}?quality=90&token={token}")),
        ("rendered", format!("{base}/rendered?w=64&h=64&token={token}")),
        ("window", format!("{base}/rendered?w=64&h=64&window-center=40&window-width=400&token={token}")),
        ("frame 0 path", format!("{base}/frames/0/preview?w=64&h=64&token={token}")),
        ("frame 1", format!("{base}/frames/1/preview?w=64&h=64&token={token}")),
        ("series", format!("{}/series/{}/preview?w=64&h=64&token={token}", edge.url, t.s1)),
        ("grid", format!("{}/studies/{}/grid.json?token={token}", edge.url, t.st1)),
        ("grid page", format!("{}/studies/{}/grid?token={token}", edge.url, t.st1)),
        ("dicomweb", format!("{}/dicom-web/studies/1.2/series/1.2.3/thumbnail?token={token}", edge.url)),
    ] {
        let (status, code, message) = refusal(client().get(&url).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{what}: {url}");
        assert!(message.contains("signed link"), "{what}: {message}");
    }
    // Nor does it become a session cookie.
    let r = client().post(format!("{}/auth/session", edge.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(outcome(r).await, err(403, "forbidden"));
    assert_eq!(fake.parent_lookups(), 0, "a misused link costs no lookup");

    // A link without sizes is the full preview, and only that.
    let r = post(&sign, Some(MINT_KEY), json!({"instances": [t.i1]})).await;
    let v: Value = r.json().await.unwrap();
    let full = format!("{}{}", edge.url, v["links"][0]["url"].as_str().unwrap());
    assert_eq!(plain(&full).await, ok());
    let t2 = token_of(&full);
    assert_eq!(plain(&format!("{inst}?w=64&h=64&token={t2}")).await, err(403, "forbidden"));
    assert_eq!(plain(&format!("{inst}?quality=5&token={t2}")).await, err(403, "forbidden"));
    // Each size is its own token.
    let r = post(
        &sign,
        Some(MINT_KEY),
        json!({"instances": [t.i1], "sizes": [{"w": 32, "h": 32}, {"w": 96, "h": 96}]}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    let (a, b) = (v["links"][0]["url"].as_str().unwrap(), v["links"][1]["url"].as_str().unwrap());
    assert_ne!(token_of(a), token_of(b));
    assert_eq!(plain(&format!("{}{a}", edge.url)).await, ok());
    assert_eq!(plain(&format!("{inst}?w=96&h=96&token={}", token_of(a))).await, err(403, "forbidden"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn grid_links_carry_the_bare_sub_work_and_are_bound_to_the_thumbnail() {
    let fake = FakeOrthanc::start().await;
    let t = tree(&fake);
    let edge = TestEdge::builder(&fake.url).jwt_secret(JWT_SECRET).start().await;
    let session = hs(json!({"sub": "alice", "exp": now() + 300, "studies": [t.st1]}));
    let r = client()
        .get(format!("{}/studies/{}/grid.json", edge.url, t.st1))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let grid: Value = r.json().await.unwrap();
    let series = grid["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    for s in series {
        let thumb = s["thumbnail"].as_str().unwrap();
        let token = token_of(thumb);
        let c = claims_of(&token);
        assert_eq!(c["sub"], "alice", "the bare subject, not jwt:alice or jwt:jwt:alice");
        assert_eq!(c["link"], json!({"route": "series-preview", "params": {"preset": "thumb"}}));
        assert_eq!(plain(&format!("{}{thumb}", edge.url)).await, ok());
        let id = s["id"].as_str().unwrap();
        for url in [
            format!("{}/series/{id}/preview?preset=grid&token={token}", edge.url),
            format!("{}/series/{id}/preview?token={token}", edge.url),
            format!("{}/series/{id}/preview?w=900&token={token}", edge.url),
            format!("{}/studies/{}/grid.json?token={token}", edge.url, t.st1),
        ] {
            assert_eq!(plain(&url).await, err(403, "forbidden"), "{url}");
        }
    }
    // The session token itself is unbound: other variants and the grid page still work.
    let other = format!("{}/series/{}/preview?preset=grid", edge.url, t.s1);
    assert_eq!(bearer(&other, &session).await, ok());
    assert_eq!(bearer(&format!("{}/studies/{}/grid", edge.url, t.st1), &session).await, ok());
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn required_scope_is_carried_by_minted_tokens_and_named_lowercase() {
    let fake = FakeOrthanc::start().await;
    let t = tree(&fake);
    let edge = TestEdge::builder(&fake.url)
        .jwt_secret(JWT_SECRET)
        .envs(&[("ORTHANC_EDGE__AUTH__JWT__REQUIRED_SCOPE", "edge:preview")])
        .start()
        .await;
    let url = edge.preview_url(&t.i1);
    // A token without the scope: refused, the scope named as in config.
    let lacking = hs(json!({"sub": "a", "exp": now() + 300}));
    let (status, code, message) =
        refusal(client().get(&url).bearer_auth(&lacking).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert!(message.contains("`preview`"), "{message}");
    // Tokens the edge mints: signed links, sessions, grid thumbnails.
    let r = post(&format!("{}/auth/sign", edge.url), Some(MINT_KEY), json!({"instances": [t.i1]})).await;
    let v: Value = r.json().await.unwrap();
    let link = format!("{}{}", edge.url, v["links"][0]["url"].as_str().unwrap());
    assert_eq!(claims_of(&token_of(&link))["scope"], "edge:preview");
    assert_eq!(plain(&link).await, ok());
    let r = post(&format!("{}/auth/session", edge.url), Some(MINT_KEY), json!({"studies": [t.st1]})).await;
    let v: Value = r.json().await.unwrap();
    let session = v["token"].as_str().unwrap().to_owned();
    assert_eq!(bearer(&url, &session).await, ok());
    let r = client()
        .get(format!("{}/studies/{}/grid.json", edge.url, t.st1))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    let grid: Value = r.json().await.unwrap();
    for s in grid["series"].as_array().unwrap() {
        assert_eq!(plain(&format!("{}{}", edge.url, s["thumbnail"].as_str().unwrap())).await, ok());
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn session_endpoint_never_echoes_the_cookie_and_checks_the_origin() {
    let fake = FakeOrthanc::start().await;
    let viewer = "http://viewer.test:8000";
    let origins = format!(r#"["{viewer}"]"#);
    let edge = TestEdge::builder(&fake.url)
        .jwt_secret(JWT_SECRET)
        .envs(&[("ORTHANC_EDGE__CORS__ALLOWED_ORIGINS", &origins)])
        .start()
        .await;
    let session = format!("{}/auth/session", edge.url);
    let token = hs(json!({"sub": "alice", "exp": now() + 300}));
    let cookie = format!("orthanc_edge_session={token}");
    // Only the cookie: the cookie is set again, the token stays out of the body.
    let r = client().post(&session).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "set-cookie").starts_with(&format!("{cookie};")));
    let body = r.text().await.unwrap();
    assert!(!body.contains(&token), "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v.get("token").is_none() && v["expires_at"].as_u64().is_some(), "{body}");
    // Presented as Bearer (the caller has it) or newly minted: in the body.
    let r = client()
        .post(&session)
        .bearer_auth(&token)
        .header("Cookie", "orthanc_edge_session=x")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token"], token.as_str());
    let v: Value = post(&session, Some(MINT_KEY), json!({})).await.json().await.unwrap();
    assert!(v["token"].as_str().is_some_and(|t| t != token));

    // Origin: foreign → 403 on POST and DELETE, before any credential is looked at.
    let edge_origin = edge.url.clone();
    for (origin, allowed) in [
        (Some("http://evil.test"), false),
        (Some("null"), false),
        (Some("http://viewer.test:8001"), false),
        (Some(viewer), true),
        (Some(edge_origin.as_str()), true),
        (None, true),
    ] {
        let with = |mut r: reqwest::RequestBuilder| {
            if let Some(o) = origin {
                r = r.header("Origin", o);
            }
            r
        };
        let r = with(client().post(&session).bearer_auth(&token)).send().await.unwrap();
        let got = outcome(r).await;
        let r = with(client().post(&session).header("X-Api-Key", MINT_KEY)).send().await.unwrap();
        let minted = outcome(r).await;
        let r = with(client().delete(&session)).send().await.unwrap();
        let cookie_gone = r.headers().get("set-cookie").is_some();
        let deleted = outcome(r).await;
        if allowed {
            assert_eq!((got, minted), (ok(), ok()), "{origin:?}");
            assert_eq!(deleted, (204, String::new()), "{origin:?}");
            assert!(cookie_gone);
        } else {
            assert_eq!(got, err(403, "origin-not-allowed"), "{origin:?}");
            assert_eq!(minted, err(403, "origin-not-allowed"), "{origin:?}");
            assert_eq!(deleted, err(403, "origin-not-allowed"), "{origin:?}");
            assert!(!cookie_gone, "a refused logout sets no cookie");
        }
    }
    // A cross-site form carrying bad credentials is refused for its origin, not counted as a failure.
    let r = client()
        .post(&session)
        .header("Origin", "http://evil.test")
        .bearer_auth("junk")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await, err(403, "origin-not-allowed"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn an_oversize_jwks_is_refused_and_the_last_good_keys_are_kept() {
    let fake = FakeOrthanc::start().await;
    let idp = Canned::start(Answer::status(200).body(jwks(&["rsa-a.jwk.json"]))).await;
    let edge = TestEdge::builder(&fake.url)
        .envs(&[
            ("ORTHANC_EDGE__AUTH__JWT__JWKS_URL", &idp.url),
            ("ORTHANC_EDGE__AUTH__JWT__JWKS_COOLDOWN_S", "0"),
            ("ORTHANC_EDGE__AUTH__JWT__JWKS_REFRESH_S", "3600"),
        ])
        .start()
        .await;
    let url = edge.preview_url(ID);
    let claims = json!({"sub": "kc-user", "exp": now() + 300});
    let a = signed(Algorithm::RS256, "rsa-a.key", Some("key-a"), claims.clone());
    let b = signed(Algorithm::RS256, "rsa-b.key", Some("key-b"), claims);
    assert_eq!(bearer(&url, &a).await, ok());
    // Valid JSON holding key-b, padded past 1 MiB: refused, key-a still trusted.
    let padded = format!("{}{}", " ".repeat((1 << 20) + 1), jwks(&["rsa-b.jwk.json"]));
    idp.set(Answer::status(200).body(padded));
    let calls = idp.calls();
    assert_eq!(bearer(&url, &b).await, err(401, "invalid-credentials"));
    assert!(idp.calls() > calls, "the unknown kid made the edge fetch");
    assert_eq!(bearer(&url, &a).await, ok());
    // The same set at its real size is taken.
    idp.set(Answer::status(200).body(jwks(&["rsa-b.jwk.json"])));
    assert_eq!(bearer(&url, &b).await, ok());
    edge.stop().await;
    idp.stop().await;
    fake.stop().await;
}
