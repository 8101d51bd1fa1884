//! Authorization on canonical, verified resources against a fake Orthanc: DICOMweb lineage checks,
//! delegated decisions that cover only what the validator was asked, the validator's canonical
//! request, no existence oracle for restricted callers, delegated failures and budgets.

#![allow(clippy::unwrap_used)]

use crate::support::*;
use serde_json::{json, Value};

/// Two patients' studies, each with one series of one instance, with their DICOM UIDs.
struct Patients {
    a: Study,
    b: Study,
}

struct Study {
    study: String,
    series: String,
    instance: String,
    study_uid: &'static str,
    series_uid: &'static str,
    instance_uid: &'static str,
}

impl Study {
    fn thumbnail(&self, edge: &TestEdge) -> String {
        format!("{}/dicom-web/studies/{}/series/{}/thumbnail", edge.url, self.study_uid, self.series_uid)
    }
}

fn patients(fake: &FakeOrthanc) -> Patients {
    let study = |n: u32, uids: [&'static str; 3]| Study {
        study: synth_id('c', n),
        series: synth_id('b', n),
        instance: synth_id('a', n),
        study_uid: uids[0],
        series_uid: uids[1],
        instance_uid: uids[2],
    };
    let p = Patients {
        a: study(1, ["1.2.826.1.1", "1.2.826.1.1.1", "1.2.826.1.1.1.1"]),
        b: study(2, ["1.2.826.2.1", "1.2.826.2.1.1", "1.2.826.2.1.1.1"]),
    };
    for s in [&p.a, &p.b] {
        fake.add_instance(&s.instance, &s.series, &s.study);
        fake.add_uid(s.study_uid, "Study", &s.study);
        fake.add_uid(s.series_uid, "Series", &s.series);
        fake.add_uid(s.instance_uid, "Instance", &s.instance);
    }
    p
}

async fn keyed(url: &str) -> (u16, String) {
    outcome(client().get(url).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap()).await
}

fn delegate_env(validator: &str) -> Vec<(&str, &str)> {
    vec![
        ("ORTHANC_EDGE__AUTH__DELEGATE__URL", validator),
        ("ORTHANC_EDGE__AUTH__DELEGATE__DECISION", "resource"),
        ("ORTHANC_EDGE__AUTH__DELEGATE__TIMEOUT_MS", "1000"),
    ]
}

#[actix_web::test]
async fn dicomweb_lineage_is_checked_before_authorization_or_cache() {
    let fake = FakeOrthanc::start().await;
    let p = patients(&fake);
    let edge = TestEdge::builder(&fake.url).start().await;
    let e = &edge.url;
    let (a, b) = (&p.a, &p.b);
    // Each study's own paths are served.
    assert_eq!(keyed(&a.thumbnail(&edge)).await, ok());
    assert_eq!(keyed(&b.thumbnail(&edge)).await, ok());
    let images = fake.image_requests();
    // A series or instance of patient B under patient A's study is no resource at all.
    for url in [
        format!("{e}/dicom-web/studies/{}/series/{}/thumbnail", a.study_uid, b.series_uid),
        format!("{e}/dicom-web/studies/{}/series/{}/rendered", a.study_uid, b.series_uid),
        format!(
            "{e}/dicom-web/studies/{}/series/{}/instances/{}/rendered",
            a.study_uid, a.series_uid, b.instance_uid
        ),
        format!(
            "{e}/dicom-web/studies/{}/series/{}/instances/{}/thumbnail",
            a.study_uid, a.series_uid, b.instance_uid
        ),
        // A UID of the wrong level (a series UID named as a study) resolves to nothing either.
        format!("{e}/dicom-web/studies/{}/series/{}/thumbnail", a.series_uid, a.series_uid),
    ] {
        assert_eq!(keyed(&url).await, err(404, "not-found"), "{url}");
    }
    assert_eq!(fake.image_requests(), images, "no image fetched for a mismatched lineage");
    let good = format!(
        "{e}/dicom-web/studies/{}/series/{}/instances/{}/rendered",
        b.study_uid, b.series_uid, b.instance_uid
    );
    assert_eq!(keyed(&good).await, ok());
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn a_delegated_decision_covers_only_the_resource_the_validator_was_asked_about() {
    let fake = FakeOrthanc::start().await;
    let p = patients(&fake);
    let (a, b) = (&p.a, &p.b);
    // An app that allows this user patient A's study, by the study the edge names.
    let validator = Canned::start(Answer::status(200).only_if("X-Edge-Study-UID", a.study_uid)).await;
    let edge = TestEdge::builder(&fake.url).envs(&delegate_env(&validator.url)).start().await;
    let e = &edge.url;
    let cookie = "sessionid=alice";
    let mixed = format!(
        "{e}/dicom-web/studies/{}/series/{}/instances/{}/rendered",
        a.study_uid, a.series_uid, b.instance_uid
    );
    // Whatever the validator answers for a URL naming A, B's instance under it is not served ...
    assert_ne!(with_cookie(&mixed, cookie).await.0, 200);
    // ... and leaves no decision behind that would serve B elsewhere: each is asked, and refused.
    let calls = validator.calls();
    for url in [
        format!("{e}/series/{}/preview", b.series),
        format!("{e}/instances/{}/preview?w=64", b.instance),
        format!("{e}/instances/{}/preview", b.instance),
        b.thumbnail(&edge),
    ] {
        assert_eq!(with_cookie(&url, cookie).await, err(403, "forbidden"), "{url}");
    }
    // A validator's refusal says so; it is not reported as a missing scope.
    let r = client()
        .get(format!("{e}/series/{}/preview", b.series))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("authorization service denied"), "{v}");
    // One call per resource: B's series (the DICOMweb thumbnail names the same series) and B's
    // instance (a refusal is cached like an allow, for that resource and its variants).
    assert_eq!(validator.calls(), calls + 2);
    // A's own resources are allowed, once per resource.
    assert_eq!(with_cookie(&format!("{e}/instances/{}/preview", a.instance), cookie).await, ok());
    assert_eq!(with_cookie(&a.thumbnail(&edge), cookie).await, ok());
    let allowed = validator.calls();
    assert_eq!(with_cookie(&format!("{e}/instances/{}/preview?w=64", a.instance), cookie).await, ok());
    assert_eq!(validator.calls(), allowed, "the decision on A's instance covers its variants");
    assert_eq!(fake.image_requests(), 2, "only A's images were fetched");
    edge.stop().await;
    validator.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn the_validator_is_told_the_canonical_resource() {
    let fake = FakeOrthanc::start().await;
    let p = patients(&fake);
    let a = &p.a;
    let validator = Canned::start(Answer::status(200)).await;
    let edge = TestEdge::builder(&fake.url).envs(&delegate_env(&validator.url)).start().await;
    // The instance id with its first character percent-encoded, a padded frame number, and a
    // client trying to speak for the edge.
    let first = a.instance.as_bytes()[0];
    let raw = format!("%{first:02x}{}", &a.instance[1..]);
    let url = format!("{}/instances/{raw}/frames/007/preview?w=64", edge.url);
    let r = client().get(&url).header("Cookie", "sessionid=u").header("X-Edge-Study", &p.b.study);
    assert_eq!(outcome(r.send().await.unwrap()).await, ok());
    let seen = &validator.seen()[0];
    assert_eq!(seen["x-original-uri"], format!("/instances/{}/frames/7/preview?w=64", a.instance));
    assert_eq!(seen["x-edge-level"], "instance");
    assert_eq!(seen["x-edge-instance"], a.instance);
    assert_eq!(seen["x-edge-series"], a.series);
    assert_eq!(seen["x-edge-study"], a.study, "the client's own X-Edge-Study is not passed on");
    assert_eq!(seen["x-edge-instance-uid"], a.instance_uid);
    assert_eq!(seen["x-edge-series-uid"], a.series_uid);
    assert_eq!(seen["x-edge-study-uid"], a.study_uid);
    // A DICOMweb series request is told the series and its study, by ids and UIDs.
    assert_eq!(with_cookie(&a.thumbnail(&edge), "sessionid=u").await, ok());
    let seen = validator.seen().pop().unwrap();
    assert_eq!(seen["x-edge-level"], "series");
    assert_eq!(seen["x-edge-series"], a.series);
    assert_eq!(seen["x-edge-study-uid"], a.study_uid);
    assert!(!seen.contains_key("x-edge-instance"));
    // A URL naming nothing Orthanc knows is asked about as such: no resolved ids.
    let unknown = format!("{}/dicom-web/studies/1.2.3/series/4.5.6/thumbnail", edge.url);
    assert_eq!(with_cookie(&unknown, "sessionid=u").await, err(404, "not-found"));
    let seen = validator.seen().pop().unwrap();
    assert_eq!(seen["x-original-uri"], "/dicom-web/studies/1.2.3/series/4.5.6/thumbnail");
    assert!(!seen.contains_key("x-edge-study") && !seen.contains_key("x-edge-series"));
    edge.stop().await;
    validator.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn restricted_callers_cannot_tell_not_yours_from_does_not_exist() {
    let fake = FakeOrthanc::start().await;
    let p = patients(&fake);
    let (a, b) = (&p.a, &p.b);
    let edge =
        TestEdge::builder(&fake.url).envs(&[("ORTHANC_EDGE__AUTH__JWT__SECRET", JWT_SECRET)]).start().await;
    let e = &edge.url;
    let token =
        hs(json!({"sub": "a", "exp": jsonwebtoken::get_current_timestamp() + 300, "studies": [a.study]}));
    assert_eq!(bearer(&a.thumbnail(&edge), &token).await, ok());
    let dw = |study: &str, series: &str| format!("{e}/dicom-web/studies/{study}/series/{series}/thumbnail");
    let denied = err(403, "forbidden");
    for url in [
        b.thumbnail(&edge),            // another patient's, real
        dw("1.2.9.9", "1.2.9.9.1"),    // does not exist
        dw(a.study_uid, b.series_uid), // real series under the wrong study
        dw(a.study_uid, "1.2.9.9.1"),  // unknown series under the right study
        format!("{e}/instances/{}/preview", b.instance),
        format!("{e}/instances/{}/preview", synth_id('f', 9)),
        format!("{e}/series/{}/preview", b.series),
        format!("{e}/series/{}/preview", synth_id('f', 9)),
    ] {
        assert_eq!(bearer(&url, &token).await, denied, "{url}");
    }
    // An unrestricted key may learn what exists: unknown UIDs are 404 there.
    assert_eq!(keyed(&dw("1.2.9.9", "1.2.9.9.1")).await, err(404, "not-found"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn delegated_401s_count_as_failed_authentications() {
    let fake = FakeOrthanc::start().await;
    let validator = Canned::start(Answer::status(401)).await;
    let mut env = delegate_env(&validator.url);
    env.extend([
        ("ORTHANC_EDGE__AUTH__RATE_LIMIT__FAILURES_PER_MINUTE", "6"),
        ("ORTHANC_EDGE__AUTH__RATE_LIMIT__BURST", "3"),
    ]);
    let edge = TestEdge::builder(&fake.url).envs(&env).start().await;
    let url = edge.preview_url(ID);
    let mut codes = Vec::new();
    for n in 0..20 {
        codes.push(with_cookie(&url, &format!("sessionid=guess-{n}")).await);
    }
    assert_eq!(
        &codes[..3],
        &[err(401, "invalid-credentials"), err(401, "invalid-credentials"), err(401, "invalid-credentials")]
    );
    assert!(codes[3..].iter().all(|c| *c == err(429, "too-many-failures")), "{codes:?}");
    assert!(validator.calls() <= 4, "a blocked address costs the validator nothing: {}", validator.calls());
    edge.stop().await;
    validator.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn delegated_miss_budgets_follow_the_user_not_the_cookies() {
    let fake = FakeOrthanc::start().await;
    let validator = Canned::start(Answer::status(200).header("X-Edge-User", "alice")).await;
    let mut env = delegate_env(&validator.url);
    env.extend([
        ("ORTHANC_EDGE__TRANSFORM__MISSES_PER_MINUTE", "6"),
        ("ORTHANC_EDGE__TRANSFORM__MISS_BURST", "2"),
    ]);
    let edge = TestEdge::builder(&fake.url).envs(&env).start().await;
    let new_image = |n: u32| edge.preview_url(&synth_id('d', n));
    // Junk cookies alongside the user's do not make a new budget.
    assert_eq!(with_cookie(&new_image(1), "sessionid=alice; junk=1").await, ok());
    assert_eq!(with_cookie(&new_image(2), "sessionid=alice; junk=2").await, ok());
    assert_eq!(with_cookie(&new_image(3), "sessionid=alice; junk=3").await, err(429, "too-many-misses"));
    // A validator that names no user: the budget is the client address's.
    validator.set(Answer::status(200));
    assert_eq!(with_cookie(&new_image(4), "a=1").await, ok());
    assert_eq!(with_cookie(&new_image(5), "a=2").await, ok());
    assert_eq!(with_cookie(&new_image(6), "a=3").await, err(429, "too-many-misses"));
    edge.stop().await;
    validator.stop().await;
    fake.stop().await;
}
