#!/usr/bin/env python3
# Makes the JPEG 2000 fixtures of src/dicom/tests.rs (run once; the files are committed):
#   j2k_signed16.dcm  64x48, 16-bit signed MONOCHROME2, JPEG 2000 lossless: (x*37 + y*101) % 4096 - 2048
#   j2k_rgb8.dcm      64x48, 8-bit RGB, JPEG 2000 lossless (YBR_RCT): ((x*3+c*50) % 256, (y*5+c*30) % 256, ...)
#   j2k_gradient16.dcm 256x200, 16-bit unsigned MONOCHROME2, JPEG 2000 lossless: x*12 + y*5 (smooth,
#                     for decoding at the codestream's lower resolution levels)
# Needs pydicom, numpy, pylibjpeg-openjpeg.
import os
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

here = os.path.dirname(os.path.abspath(__file__))
H, W = 48, 64
y, x = np.mgrid[0:H, 0:W]


def base(rows, cols):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows, ds.Columns = rows, cols
    return ds


gray = base(H, W)
gray.SamplesPerPixel = 1
gray.PhotometricInterpretation = "MONOCHROME2"
gray.BitsAllocated, gray.BitsStored, gray.HighBit, gray.PixelRepresentation = 16, 16, 15, 1
values = ((x * 37 + y * 101) % 4096 - 2048).astype(np.int16)
gray.compress(JPEG2000Lossless, values, encoding_plugin="pylibjpeg")
gray.save_as(os.path.join(here, "j2k_signed16.dcm"), enforce_file_format=True)

rgb = base(H, W)
rgb.SamplesPerPixel = 3
rgb.PhotometricInterpretation = "RGB"
rgb.PlanarConfiguration = 0
rgb.BitsAllocated, rgb.BitsStored, rgb.HighBit, rgb.PixelRepresentation = 8, 8, 7, 0
px = np.stack([(x * 3 + c * 50 + y * (c + 1)) % 256 for c in range(3)], axis=-1).astype(np.uint8)
rgb.compress(JPEG2000Lossless, px, encoding_plugin="pylibjpeg")
rgb.save_as(os.path.join(here, "j2k_rgb8.dcm"), enforce_file_format=True)

GH, GW = 200, 256
gy, gx = np.mgrid[0:GH, 0:GW]
grad = base(GH, GW)
grad.SamplesPerPixel = 1
grad.PhotometricInterpretation = "MONOCHROME2"
grad.BitsAllocated, grad.BitsStored, grad.HighBit, grad.PixelRepresentation = 16, 12, 11, 0
grad.compress(JPEG2000Lossless, (gx * 12 + gy * 5).astype(np.uint16), encoding_plugin="pylibjpeg")
grad.save_as(os.path.join(here, "j2k_gradient16.dcm"), enforce_file_format=True)
