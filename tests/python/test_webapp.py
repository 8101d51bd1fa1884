"""The example Django web app (examples/django) with orthanc-edge and a real Orthanc.

Run by scripts/ci/test-python.sh, which starts Orthanc (via scripts/ci/it-orthanc.sh), the edge and
the app (gunicorn) and sets EDGE_URL, DJANGO_URL, EDGE_JWT_SECRET, MANIFEST,
ORTHANC_EDGE_IT_PASSWORD. Standard library + PyJWT only.
"""
import json
import os
import re
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "django"))
from webapp.tokens import edge_token  # noqa: E402

EDGE = os.environ["EDGE_URL"]
DJANGO = os.environ["DJANGO_URL"]
SECRET = os.environ["EDGE_JWT_SECRET"]
PASSWORD = os.environ["ORTHANC_EDGE_IT_PASSWORD"]
with open(os.environ["MANIFEST"]) as f:
    MANIFEST = json.load(f)
STUDY = MANIFEST["study"]
IDS = [i["instance"] for i in MANIFEST["instances"].values() if i["preview_status"] == 200]
OTHER_STUDY = "00000000-00000000-00000000-00000000-00000000"

SEEN = []  # every (headers, body) received, checked for the Orthanc password at the end


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def get(url, headers=None):
    """(status, headers dict with lowercase names, body bytes); never raises on HTTP errors."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with OPENER.open(req, timeout=20) as r:
            status, hdrs, body = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, body = e.code, e.headers, e.read()
    headers = {k.lower(): v for k, v in hdrs.items()}
    SEEN.append((str(hdrs), body))
    return status, headers, body


def login(user):
    status, headers, _ = get(f"{DJANGO}/login?user={user}")
    assert status == 200, status
    m = re.search(r"sessionid=([^;]+)", headers.get("set-cookie", ""))
    assert m, headers
    return f"sessionid={m.group(1)}"


class WebApp(unittest.TestCase):
    def assert_no_prompt(self, headers):
        self.assertNotIn("www-authenticate", headers)

    def test_pyjwt_tokens(self):
        token = edge_token(SECRET, "alice", studies=[STUDY])
        for i in IDS:
            status, headers, body = get(f"{EDGE}/instances/{i}/preview?token={token}")
            self.assertEqual(status, 200)
            self.assertEqual(headers["content-type"], "image/png")
            self.assertTrue(body.startswith(b"\x89PNG"))
        # The same token as a Bearer header, too.
        status, _, _ = get(f"{EDGE}/instances/{IDS[0]}/preview", {"Authorization": f"Bearer {token}"})
        self.assertEqual(status, 200)
        other = edge_token(SECRET, "alice", studies=[OTHER_STUDY])
        status, headers, body = get(f"{EDGE}/instances/{IDS[0]}/preview?token={other}")
        self.assertEqual((status, json.loads(body)["code"]), (403, "forbidden"))
        self.assert_no_prompt(headers)
        expired = edge_token(SECRET, "alice", lifetime_s=-120)
        status, headers, body = get(f"{EDGE}/instances/{IDS[0]}/preview?token={expired}")
        self.assertEqual((status, json.loads(body)["code"]), (401, "token-expired"))
        self.assert_no_prompt(headers)
        forged = edge_token("not-the-secret-not-the-secret-0000", "mallory")
        status, headers, _ = get(f"{EDGE}/instances/{IDS[0]}/preview?token={forged}")
        self.assertEqual(status, 401)
        self.assert_no_prompt(headers)

    def test_django_grid_page(self):
        cookie = login("bob")
        status, _, body = get(f"{DJANGO}/grid", {"Cookie": cookie})
        self.assertEqual(status, 200)
        srcs = re.findall(r'<img src="([^"]+)"', body.decode())
        self.assertEqual(len(srcs), len(IDS))
        for src in srcs:
            status, headers, _ = get(src.replace("&amp;", "&"))
            self.assertEqual(status, 200, src.split("?")[0])
            self.assertEqual(headers["content-type"], "image/png")

    def test_delegated_to_the_django_session(self):
        cookie = login("carol")
        for _ in range(3):
            for i in IDS:
                status, _, _ = get(f"{EDGE}/instances/{i}/preview", {"Cookie": cookie})
                self.assertEqual(status, 200)
        status, headers, body = get(
            f"{EDGE}/instances/{IDS[0]}/preview", {"Cookie": "sessionid=not-a-session"}
        )
        self.assertEqual((status, json.loads(body)["code"]), (401, "invalid-credentials"))
        self.assert_no_prompt(headers)
        status, headers, body = get(f"{EDGE}/instances/{IDS[0]}/preview")
        self.assertEqual((status, json.loads(body)["code"]), (401, "unauthenticated"))
        self.assert_no_prompt(headers)

    @classmethod
    def tearDownClass(cls):
        for headers, body in SEEN:
            assert PASSWORD not in headers, "the Orthanc password reached a response header"
            assert PASSWORD.encode() not in body, "the Orthanc password reached a response body"


if __name__ == "__main__":
    unittest.main()
