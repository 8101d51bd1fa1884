#!/usr/bin/env python3
# Generates deterministic synthetic DICOM test files for orthanc-edge's integration tests and demo.
#
# Usage: scripts/dev/gen_dicom.py OUTDIR [--large] [--patient N] [--study N] [--slices N]
#
# Every file belongs to patient Doe^Jane (EDGE-TEST-1) and to one study; each file is its own
# series. All UIDs derive from a constant root, so reruns give the same Orthanc ids.
# --patient N (N > 1) writes another patient's study instead: Roe^Richard-N (EDGE-TEST-N), its own
# UID root, and a second marker in every image's bottom-right corner so its pixels differ from
# patient 1's (the two-patient security tests, tests/it/security_real.rs).
#   ct16.dcm         CT, 16-bit signed MONOCHROME2, 512x512, slope/intercept + window
#   cr_mono1.dcm     CR, MONOCHROME1, 16-bit unsigned (BitsStored 12), 640 cols x 800 rows
#   rgb8.dcm         Secondary capture, 8-bit RGB interleaved, 256 cols x 192 rows
#   multiframe3.dcm  Multi-frame SC, 3 frames 8-bit MONOCHROME2, 128 cols x 96 rows
#   j2k.dcm          JPEG 2000 lossless (1.2.840.10008.1.2.4.90), 8-bit MONOCHROME2 128x128,
#                    which Orthanc 1.10.1 without the GDCM plugin cannot decode (→ 415)
#   ctseries_NNNN.dcm  CT series (series 7) of --slices instances, 128x128, one per slice
#   cr_large.dcm     (only with --large) CR MONOCHROME2 2048 cols x 2500 rows, for benchmarks
# Every image has a bright marker in its top-left corner so flips/transpositions show.
# Needs pydicom and numpy (scripts/ci/setup-deps.sh installs them); Pillow, if present, makes the
# JPEG 2000 codestream a real one, otherwise a well-formed-looking but undecodable fake is used.
import argparse
import io
import os
import sys

try:
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID
except ImportError as exc:  # pragma: no cover - environment problem
    sys.exit(f"gen_dicom.py: {exc}; run scripts/ci/setup-deps.sh first")

ROOT = "1.2.826.0.1.3680043.8.498.77001"  # pydicom's org root + a project-constant suffix
STUDY_UID = f"{ROOT}.1"
FRAME_OF_REF_UID = f"{ROOT}.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
PYDICOM_MAJOR = int(pydicom.__version__.split(".")[0])
PATIENT = 1  # --patient

SOP_CT = "1.2.840.10008.5.1.4.1.1.2"
SOP_CR = "1.2.840.10008.5.1.4.1.1.1"
SOP_SC = "1.2.840.10008.5.1.4.1.1.7"
SOP_SC_MF_GRAY_BYTE = "1.2.840.10008.5.1.4.1.1.7.2"


def series_uid(n):
    return f"{ROOT}.3.{n}"


def instance_uid(n):
    return f"{ROOT}.4.{n}.1"


def base_dataset(*, n, sop_class, modality, description, transfer_syntax=EXPLICIT_VR_LE):
    """Patient/study/series/instance modules shared by every file; n is the series number."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(instance_uid(n))
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(f"{ROOT}.9")
    meta.ImplementationVersionName = "ORTHANC_EDGE_GEN"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = instance_uid(n)
    ds.StudyDate = "20240102"
    ds.SeriesDate = "20240102"
    ds.ContentDate = "20240102"
    ds.StudyTime = "101500"
    ds.SeriesTime = f"1016{n:02d}"
    ds.ContentTime = f"1016{n:02d}"
    ds.AccessionNumber = "EDGEACC0001"
    ds.Modality = modality
    ds.Manufacturer = "orthanc-edge test generator"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "orthanc-edge synthetic study"
    ds.SeriesDescription = description
    if PATIENT == 1:
        ds.PatientName = "Doe^Jane"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "F"
    else:
        ds.PatientName = f"Roe^Richard-{PATIENT}"
        ds.PatientBirthDate = "19800202"
        ds.PatientSex = "M"
    ds.PatientID = f"EDGE-TEST-{PATIENT}"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid(n)
    ds.StudyID = "1"
    ds.SeriesNumber = n
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = FRAME_OF_REF_UID
    ds.PatientOrientation = ""
    return ds


def set_pixels(ds, arr, *, photometric, bits_stored=None, signed=False, frames=None):
    """Image pixel module for native (uncompressed) data; arr is (rows, cols[, 3]) or
    (frames, rows, cols)."""
    if frames is not None:
        _, rows, cols = arr.shape
        ds.NumberOfFrames = frames
    else:
        rows, cols = arr.shape[:2]
    samples = 3 if photometric == "RGB" else 1
    bits_alloc = arr.dtype.itemsize * 8
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits_alloc
    ds.BitsStored = bits_stored or bits_alloc
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    ds.PixelData = data
    ds["PixelData"].VR = "OW" if bits_alloc > 8 else "OB"


def marker(arr, value, size):
    """Bright square in the top-left corner: orientation check for image comparisons. Patients
    other than 1 get a second one in the bottom-right corner: their pixels are their own."""
    arr[2 : 2 + size, 2 : 2 + size, ...] = value
    if PATIENT != 1:
        arr[-2 - size : -2, -2 - size : -2, ...] = value


def make_ct16():
    ds = base_dataset(n=1, sop_class=SOP_CT, modality="CT", description="CT 16-bit signed 512x512")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = "120"
    ds.SliceThickness = "1.0"
    ds.PixelSpacing = ["0.7", "0.7"]
    ds.ImagePositionPatient = ["-179.2", "-179.2", "0.0"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = "0.0"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"

    size = 512
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    cx = cy = (size - 1) / 2
    r = np.hypot(x - cx, y - cy)
    hu = np.full((size, size), -1000.0)  # air inside the scan field of view
    body = r < 200
    hu[body] = -600 + 1200 * (x[body] / (size - 1))  # left-to-right gradient, -600..600 HU
    hu[np.hypot(x - 330, y - 220) < 40] = 1000  # "bone" disc, off-centre (asymmetric)
    hu[(np.abs(x - 180) < 30) & (np.abs(y - 320) < 15)] = -500  # "lung" bar
    stored = hu + 1024
    stored[r >= 250] = -2000  # outside the field of view: negative stored values
    arr = stored.round().astype(np.int16)
    marker(arr, 3071, 16)  # 2047 HU
    set_pixels(ds, arr, photometric="MONOCHROME2", bits_stored=16, signed=True)
    ds.SmallestImagePixelValue = int(arr.min())
    ds.LargestImagePixelValue = int(arr.max())
    ds["SmallestImagePixelValue"].VR = "SS"
    ds["LargestImagePixelValue"].VR = "SS"
    return ds


def make_cr_mono1(n=2, cols=640, rows=800, photometric="MONOCHROME1", name="CR MONOCHROME1 12-bit 640x800"):
    ds = base_dataset(n=n, sop_class=SOP_CR, modality="CR", description=name)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.ImagerPixelSpacing = ["0.2", "0.2"]
    ds.PixelSpacing = ["0.2", "0.2"]
    ds.WindowCenter = "2048"
    ds.WindowWidth = "4096"
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    arr = 300 + 3500 * (y / (rows - 1))  # top-to-bottom gradient
    arr += 200 * np.sin(x / cols * 6 * np.pi)  # a few vertical bands
    arr[(np.abs(x - cols * 0.7) < cols * 0.1) & (np.abs(y - rows * 0.3) < rows * 0.08)] = 100
    arr = np.clip(arr.round(), 0, 4095).astype(np.uint16)
    # MONOCHROME1: low values are bright, so the marker uses 0 to stand out as white.
    marker(arr, 0 if photometric == "MONOCHROME1" else 4095, max(16, cols // 40))
    set_pixels(ds, arr, photometric=photometric, bits_stored=12)
    return ds


def make_rgb8():
    ds = base_dataset(n=3, sop_class=SOP_SC, modality="OT", description="SC RGB 8-bit 256x192")
    ds.ConversionType = "WSD"
    cols, rows = 256, 192
    y, x = np.mgrid[0:rows, 0:cols]
    arr = np.zeros((rows, cols, 3), dtype=np.uint8)
    arr[..., 0] = (x * 255 // (cols - 1)).astype(np.uint8)  # red grows to the right
    arr[..., 1] = (y * 255 // (rows - 1)).astype(np.uint8)  # green grows downwards
    arr[..., 2] = np.where((x // 32 + y // 32) % 2 == 0, 64, 192).astype(np.uint8)
    arr[140:180, 20:60] = (255, 0, 0)
    arr[140:180, 80:120] = (0, 255, 0)
    arr[140:180, 140:180] = (0, 0, 255)
    arr[140:180, 200:240] = (255, 255, 255)
    marker(arr, (255, 255, 0), 12)
    set_pixels(ds, arr, photometric="RGB")
    return ds


def make_multiframe3():
    ds = base_dataset(
        n=4, sop_class=SOP_SC_MF_GRAY_BYTE, modality="OT", description="SC multi-frame 3x 8-bit 128x96"
    )
    ds.ConversionType = "WSD"
    cols, rows, frames = 128, 96, 3
    y, x = np.mgrid[0:rows, 0:cols]
    arr = np.zeros((frames, rows, cols), dtype=np.uint8)
    arr[0] = (x * 200 // (cols - 1)).astype(np.uint8)  # frame 0: horizontal gradient
    arr[1] = (y * 200 // (rows - 1)).astype(np.uint8)  # frame 1: vertical gradient
    arr[2] = np.where((x // 16 + y // 16) % 2 == 0, 40, 160).astype(np.uint8)  # frame 2: checkerboard
    for f in range(frames):
        for b in range(f + 1):  # f+1 white bars at the bottom: the frame number, visibly
            arr[f, rows - 24 : rows - 4, 20 + b * 16 : 28 + b * 16] = 255
        marker(arr[f], 255, 8)
    set_pixels(ds, arr, photometric="MONOCHROME2", frames=frames)
    ds.FrameIncrementPointer = 0x00181063  # FrameTime
    ds.FrameTime = "100"
    return ds


def j2k_codestream(arr):
    """Real lossless JPEG 2000 codestream via Pillow if available, else an undecodable fake."""
    try:
        from PIL import Image, features

        if features.check("jpg_2000"):
            buf = io.BytesIO()
            Image.fromarray(arr, mode="L").save(buf, format="JPEG2000", no_jp2=True, irreversible=False)
            return buf.getvalue(), True
    except ImportError:
        pass
    rows, cols = arr.shape
    siz = (
        b"\xff\x51" + (41).to_bytes(2, "big") + b"\x00\x00"
        + cols.to_bytes(4, "big") + rows.to_bytes(4, "big") + bytes(8)
        + cols.to_bytes(4, "big") + rows.to_bytes(4, "big") + bytes(8)
        + b"\x00\x01" + b"\x07\x01\x01"
    )
    fake = b"\xff\x4f" + siz + b"\xff\x90" + bytes(range(256)) * 4 + b"\xff\xd9"
    return fake, False


def make_j2k():
    ds = base_dataset(
        n=5, sop_class=SOP_SC, modality="OT", description="SC JPEG 2000 lossless 128x128",
        transfer_syntax=JPEG2000_LOSSLESS,
    )
    ds.ConversionType = "WSD"
    size = 128
    y, x = np.mgrid[0:size, 0:size]
    arr = ((x + y) * 255 // (2 * (size - 1))).astype(np.uint8)
    marker(arr, 255, 10)
    codestream, real = j2k_codestream(arr)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.ImageComments = "real JPEG 2000 codestream" if real else "fake JPEG 2000 codestream (undecodable)"
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


def make_ct_slice(k, slices, size=128, series_count=1):
    """Slice k (0-based) of `slices` CT instances spread over `series_count` series (numbered
    from 7): a disc whose brightness and radius change with k, so every slice renders differently."""
    n = 7 + k % series_count
    per_series = -(-slices // series_count)
    ds = base_dataset(n=n, sop_class=SOP_CT, modality="CT", description=f"CT series {n}, {per_series} slices {size}x{size}")
    ds.SOPInstanceUID = f"{ROOT}.4.7.{k + 1}"
    ds.file_meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
    ds.InstanceNumber = k // series_count + 1
    ds.ImagePositionPatient = [0, 0, float(k)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceThickness = 1
    ds.PixelSpacing = [1, 1]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - size / 2, y - size / 2)
    arr = np.where(r < size / 6 + (k % 20) * size / 60, 1024 + 40 * (k % 25), 24).astype(np.int16)
    if PATIENT != 1:
        marker(arr, 2047, max(4, size // 16))
    set_pixels(ds, arr, photometric="MONOCHROME2", signed=True)
    return ds


def save(ds, path):
    if PYDICOM_MAJOR >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:  # pydicom 2.x (e.g. Debian's python3-pydicom)
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        ds.save_as(path, write_like_original=False)


def main():
    ap = argparse.ArgumentParser(description="Write deterministic synthetic DICOM test files.")
    ap.add_argument("outdir")
    ap.add_argument("--large", action="store_true", help="also write cr_large.dcm (2048x2500, ~10 MB)")
    ap.add_argument("--slices", type=int, default=5, help="instances in the CT series ctseries_N (default 5)")
    ap.add_argument("--ct-series", type=int, default=1, help="spread the CT slices over this many series")
    ap.add_argument("--ct-size", type=int, default=128, help="rows and columns of the CT slices")
    ap.add_argument("--study", type=int, default=0,
                    help="another study: N > 0 gives every UID a different root (same patient)")
    ap.add_argument("--patient", type=int, default=1,
                    help="another patient: N > 1 gives patient EDGE-TEST-N its own study and UID root")
    args = ap.parse_args()
    if args.patient < 1:
        ap.error("--patient must be at least 1")
    global ROOT, STUDY_UID, FRAME_OF_REF_UID, PATIENT
    PATIENT = args.patient
    if PATIENT != 1:
        ROOT = f"{ROOT}.100{PATIENT}"
    if args.study:
        ROOT = f"{ROOT}.{args.study}"
    if PATIENT != 1 or args.study:
        STUDY_UID = f"{ROOT}.1"
        FRAME_OF_REF_UID = f"{ROOT}.2"
    os.makedirs(args.outdir, exist_ok=True)
    files = {
        "ct16": make_ct16(),
        "cr_mono1": make_cr_mono1(),
        "rgb8": make_rgb8(),
        "multiframe3": make_multiframe3(),
        "j2k": make_j2k(),
    }
    for k in range(args.slices):
        files[f"ctseries_{k + 1:04d}"] = make_ct_slice(k, args.slices, args.ct_size, args.ct_series)
    if args.large:
        files["cr_large"] = make_cr_mono1(
            n=6, cols=2048, rows=2500, photometric="MONOCHROME2", name="CR MONOCHROME2 12-bit 2048x2500"
        )
    for stem, ds in files.items():
        save(ds, os.path.join(args.outdir, f"{stem}.dcm"))
    print(f"gen_dicom.py: wrote {len(files)} files to {args.outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
