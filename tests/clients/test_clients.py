"""The real client libraries, unchanged but for their base URL and a credential header, against the
edge and against the real Orthanc (and its DICOMweb plugin) it fronts: each row of the README's
"Which client calls work through the edge" table is a test here.

Run by scripts/ci/test-python.sh with EDGE_URL, EDGE_API_KEY (scope preview), ORTHANC_URL,
ORTHANC_USER, ORTHANC_PASSWORD and MANIFEST (scripts/dev/load_samples.py) in the environment;
pyorthanc and dicomweb-client from PyPI (scripts/ci/setup-deps.sh clients).
"""

import io
import json
import os
import unittest

import httpx
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pyorthanc import Orthanc

EDGE = os.environ["EDGE_URL"]
KEY = os.environ["EDGE_API_KEY"]
ORTHANC = os.environ["ORTHANC_URL"]
AUTH = (os.environ["ORTHANC_USER"], os.environ["ORTHANC_PASSWORD"])
MANIFEST = json.load(open(os.environ["MANIFEST"]))


def image(body):
    img = Image.open(io.BytesIO(body))
    img.load()
    return img


def pixels(body):
    img = image(body)
    return img.size, img.mode, img.tobytes()


def uids(instance):
    tags = requests.get(f"{ORTHANC}/instances/{instance}/tags?simplify", auth=AUTH, timeout=10).json()
    return tags["StudyInstanceUID"], tags["SeriesInstanceUID"], tags["SOPInstanceUID"]


CT = MANIFEST["instances"]["ct16"]["instance"]
MULTI = MANIFEST["instances"]["multiframe3"]["instance"]


class PyOrthanc(unittest.TestCase):
    """pyorthanc's Orthanc client: the edge's URL (with the trailing slash a base URL often has)
    and `X-Api-Key` instead of Orthanc's Basic credentials."""

    @classmethod
    def setUpClass(cls):
        cls.edge = Orthanc(EDGE + "/", headers={"X-Api-Key": KEY})
        cls.orthanc = Orthanc(ORTHANC, username=AUTH[0], password=AUTH[1])

    def test_preview_png_and_jpeg(self):
        got = self.edge.get_instances_id_preview(CT)
        self.assertEqual(pixels(got), pixels(self.orthanc.get_instances_id_preview(CT)))
        jpeg = self.edge.get_instances_id_preview(CT, headers={"Accept": "image/jpeg"})
        self.assertEqual(image(jpeg).format, "JPEG")

    def test_rendered_with_orthancs_parameters(self):
        for params in ({}, {"width": 64}, {"height": 100, "smooth": True}, {"window-center": 40, "window-width": 400}):
            got = image(self.edge.get_instances_id_rendered(CT, params=params))
            want = image(self.orthanc.get_instances_id_rendered(CT, params=params))
            self.assertEqual(got.size, want.size, params)
        jpeg = self.edge.get_instances_id_rendered(CT, params={"width": 64, "quality": 50}, headers={"Accept": "image/jpeg"})
        self.assertEqual(image(jpeg).format, "JPEG")

    def test_frames(self):
        for frame in range(3):
            got = self.edge.get_instances_id_frames_frame_preview(frame, MULTI)
            want = self.orthanc.get_instances_id_frames_frame_preview(frame, MULTI)
            self.assertEqual(pixels(got), pixels(want), frame)
            rendered = self.edge.get_instances_id_frames_frame_rendered(frame, MULTI, params={"width": 32})
            self.assertEqual(image(rendered).size[0], 32)

    def test_pam_and_return_unsupported_image(self):
        pam = {"Accept": "image/x-portable-arbitrarymap"}
        self.assertEqual(self.edge.get_instances_id_preview(CT, headers=pam), self.orthanc.get_instances_id_preview(CT, headers=pam))
        tile = self.edge.get_instances_id_preview(CT, params={"returnUnsupportedImage": True})
        self.assertEqual(image(tile).format, "PNG")

    def test_the_rest_of_orthancs_api_is_not_there(self):
        for call in (lambda: self.edge.get_instances_id_tags(CT), lambda: self.edge.get_system()):
            with self.assertRaises(httpx.HTTPError) as e:
                call()
            self.assertIn("HTTP code: 404", str(e.exception))
            self.assertIn('"no-route"', str(e.exception))


class DicomwebClient(unittest.TestCase):
    """dicomweb-client's DICOMwebClient: the edge's /dicom-web with `X-Api-Key`, against the
    Orthanc DICOMweb plugin's answers for the same calls."""

    @classmethod
    def setUpClass(cls):
        cls.edge = DICOMwebClient(url=f"{EDGE}/dicom-web", headers={"X-Api-Key": KEY})
        session = requests.Session()
        session.auth = AUTH
        cls.plugin = DICOMwebClient(url=f"{ORTHANC}/dicom-web", session=session)
        cls.ct = uids(CT)
        cls.multi = uids(MULTI)

    def plugin_png(self, path, query):
        """The plugin's image for `query` written with literal commas: dicomweb-client encodes them
        (%2C), which Orthanc 1.10.1's plugin refuses (400: "must be 3" arguments)."""
        r = requests.get(f"{ORTHANC}/dicom-web/{path}?{query}", auth=AUTH, headers={"Accept": "image/png"}, timeout=20)
        r.raise_for_status()
        return r.content

    def test_instance_rendered_with_a_window(self):
        study, series, sop = self.ct
        for window in ("40,400,linear", "-600,1500,sigmoid"):
            got = self.edge.retrieve_instance_rendered(*self.ct, media_types=("image/png",), params={"window": window})
            want = self.plugin_png(f"studies/{study}/series/{series}/instances/{sop}/rendered", f"window={window}")
            self.assertEqual(pixels(got), pixels(want), window)
        with self.assertRaises(requests.HTTPError):
            self.plugin.retrieve_instance_rendered(*self.ct, media_types=("image/png",), params={"window": "40,400,linear"})
        jpeg = self.edge.retrieve_instance_rendered(*self.ct, media_types=("image/jpeg",))
        self.assertEqual(image(jpeg).format, "JPEG")

    def test_frames_rendered(self):
        for n in (1, 2, 3):
            got = self.edge.retrieve_instance_frames_rendered(*self.multi, frame_numbers=[n], media_types=("image/png",))
            want = self.plugin.retrieve_instance_frames_rendered(*self.multi, frame_numbers=[n], media_types=("image/png",))
            self.assertEqual(pixels(got), pixels(want), n)

    def test_series_rendered_with_a_viewport(self):
        study, series, _ = self.ct
        got = image(self.edge.retrieve_series_rendered(study, series, media_types=("image/png",), params={"viewport": "128,128"}))
        self.assertEqual(got.size, (128, 128))

    def test_qido_and_metadata_are_out_of_scope(self):
        study, series, _ = self.ct
        for call in (lambda: self.edge.search_for_studies(), lambda: self.edge.retrieve_series_metadata(study, series)):
            with self.assertRaises(requests.HTTPError) as e:
                call()
            self.assertEqual(e.exception.response.status_code, 404)


if __name__ == "__main__":
    unittest.main()
