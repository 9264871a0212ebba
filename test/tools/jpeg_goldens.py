"""Small test JPEGs for the JPEG decoder, one per flavour, and Pillow's decoding of them as goldens.

Run with Debian's Pillow (libjpeg-turbo) and cjpeg (apt: libjpeg-turbo-progs); the arithmetic-coded files
with non-default conditioning are written by arithmetic_conditioning.c, built here with cc and libjpeg
(apt: libjpeg62-turbo-dev):
    /usr/bin/python3 test/tools/jpeg_goldens.py

Writes test/fixtures/jpeg/*.jpg and test/fixtures/jpeg/goldens.json. For every file (these and the photos in
test/fixtures/images) and every DCT scale 1, 2, 4, 8 the golden is the sha256 of Pillow's
Image.open(f) [+ draft("RGB", size) picking that scale] .convert("RGB").tobytes(), or the fact that Pillow
refuses the file.
"""

import hashlib
import io
import json
import os
import struct
import subprocess
import tempfile

from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures")
OUT = os.path.join(ROOT, "jpeg")
PHOTOS = os.path.join(ROOT, "images")


def source(w, h):
    """A crop of the cat photo with its detail, w x h, RGB."""
    cat = Image.open(os.path.join(PHOTOS, "cat.png")).convert("RGB")
    return cat.crop((120, 40, 120 + 4 * w, 40 + 4 * h)).resize((w, h), Image.LANCZOS)


def pil_jpeg(im, **kw):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def cjpeg(im, *args, script=None):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in.ppm")
        im.save(src)
        cmd = ["cjpeg", "-quality", "90", *args]
        if script is not None:
            path = os.path.join(d, "scans.txt")
            with open(path, "w") as f:
                f.write(script)
            cmd += ["-scans", path]
        return subprocess.run([*cmd, src], check=True, capture_output=True).stdout


def conditioned(im, dc_l, dc_u, ac_k, progressive):
    """An arithmetic-coded JPEG whose DAC sets every table's L, U and Kx, from libjpeg-turbo's own encoder."""
    here = os.path.dirname(__file__)
    with tempfile.TemporaryDirectory() as d:
        tool = os.path.join(d, "conditioning")
        subprocess.run(["cc", "-O2", "-o", tool, os.path.join(here, "arithmetic_conditioning.c"), "-ljpeg"], check=True)
        src = os.path.join(d, "in.ppm")
        dst = os.path.join(d, "out.jpg")
        im.save(src)
        args = [str(x) for x in (dc_l, dc_u, ac_k, 1 if progressive else 0)]
        subprocess.run([tool, src, dst, *args], check=True)
        with open(dst, "rb") as f:
            return f.read()


def padding(marker, n):
    """Segments of the marker with n zero bytes in all, 8000 at most each (a streamed upload's window holds a
    whole segment): 4 more bytes per segment."""
    out = b""
    while n > 0:
        k = min(n, 8000)
        out += bytes([0xFF, marker]) + struct.pack(">H", k + 2) + bytes(k)
        n -= k
    return out


def arithmetic_flavours(f):
    """Arithmetic-coded files (SOF9, SOF10), their damage and the 64 KB reads Pillow feeds libjpeg in."""
    f["arithmetic-420-20x12.jpg"] = cjpeg(source(20, 12), "-arithmetic")
    f["arithmetic-444-33x17.jpg"] = cjpeg(source(33, 17), "-arithmetic", "-sample", "1x1")
    f["arithmetic-422-restart-50x40.jpg"] = cjpeg(source(50, 40), "-arithmetic", "-sample", "2x1", "-restart", "2B")
    f["arithmetic-multiscan-420-40x24.jpg"] = cjpeg(source(40, 24), "-arithmetic", script="0;\n1;\n2;\n")
    f["arithmetic-progressive-420-64x48.jpg"] = cjpeg(source(64, 48), "-arithmetic", "-progressive")
    f["arithmetic-progressive-restart-420-50x40.jpg"] = cjpeg(
        source(50, 40), "-arithmetic", "-progressive", "-restart", "3B"
    )
    f["arithmetic-progressive-gray-45x30.jpg"] = cjpeg(
        source(45, 30).convert("L"), "-arithmetic", "-grayscale", "-progressive"
    )
    f["arithmetic-conditioning-40x30.jpg"] = conditioned(source(40, 30), 2, 6, 12, False)
    f["arithmetic-progressive-conditioning-40x30.jpg"] = conditioned(source(40, 30), 3, 9, 30, True)
    restart = f["arithmetic-422-restart-50x40.jpg"]
    sos = find_sos(restart)
    # Data cut by an EOI: libjpeg feeds the decoder zeros from the marker on; Pillow accepts it.
    f["arithmetic-damaged-early-eoi-50x40.jpg"] = restart[: sos + 120] + b"\xff\xd9"
    # The second restart marker (RST1) renumbered: as RST3 (one of the next two) libjpeg's resynchronisation
    # leaves it unread, the decoder runs on zeros until it is expected; as RST7 (a prior one) it is skipped
    # for the next marker, which is then left unread in turn.
    rst1 = restart.index(b"\xff\xd1", sos)
    f["arithmetic-damaged-restart-50x40.jpg"] = restart[: rst1 + 1] + b"\xd3" + restart[rst1 + 2 :]
    f["arithmetic-damaged-restart-skip-50x40.jpg"] = restart[: rst1 + 1] + b"\xd7" + restart[rst1 + 2 :]
    flipped = bytearray(f["arithmetic-444-33x17.jpg"])
    at = find_sos(bytes(flipped)) + 20
    for i in (0, 37, 90, 200):
        flipped[at + i] ^= 0x24
    f["arithmetic-damaged-bits-33x17.jpg"] = bytes(flipped)
    small = f["arithmetic-420-20x12.jpg"]
    f["refused-arithmetic-truncated.jpg"] = small[: find_sos(small) + 40]
    # DAC: table 0's L above its U.
    f["refused-arithmetic-conditioning.jpg"] = patch(small, 0xCC, 1, 0x12)
    # Pillow reads 64 KB at a time and libjpeg-turbo cannot wait for more inside an arithmetic-coded scan:
    # a scan that crosses the end of the read its header came in is refused, one that starts after it fits.
    # APP15 segments move the scan header to end 100 bytes before 65536, where its data is still going on.
    n = 65536 - 100 - 14 - find_sos(small)
    pad = padding(0xEF, n - 4 * (-(-n // 8004)))
    f["refused-arithmetic-64k-read.jpg"] = small[:2] + pad + small[2:]
    # Comments between the first and second scans of a three-scan file: the second and third scans start
    # after the first read and end before the second one does.
    multi = f["arithmetic-multiscan-420-40x24.jpg"]
    second = scan_headers(multi)[1]
    f["arithmetic-second-64k-read-40x24.jpg"] = multi[:second] + padding(0xFE, 66000) + multi[second:]


def segments(data):
    """(marker, start, end) of each marker segment before the first SOS, end exclusive, start at 0xFF."""
    out = []
    p = 2
    while p < len(data):
        marker = data[p + 1]
        length = struct.unpack(">H", data[p + 2 : p + 4])[0]
        out.append((marker, p, p + 2 + length))
        if marker == 0xDA:
            break
        p += 2 + length
    return out


def strip(data, marker):
    for m, s, e in segments(data):
        if m == marker:
            return data[:s] + data[e:]
    raise ValueError(f"no marker {marker:#x}")


def patch(data, marker, offset, value):
    """Sets byte `offset` of the first `marker` segment's payload (after its length)."""
    for m, s, _ in segments(data):
        if m == marker:
            b = bytearray(data)
            b[s + 4 + offset] = value
            return bytes(b)
    raise ValueError(f"no marker {marker:#x}")


def find_sos(data):
    return [s for m, s, _ in segments(data) if m == 0xDA][0]


def cmyk_source(w, h):
    rgb = source(w, h)
    return rgb.convert("CMYK")


# A valid progression with 100 scans for a grayscale image: DC in two steps, each AC coefficient alone at
# Al=1, then the refinement of 1..63 in 35 bands (28 of two coefficients, 7 of one).
def hundred_scans():
    lines = ["0: 0-0, 0, 1;", "0: 0-0, 1, 0;"]
    lines += [f"0: {k}-{k}, 0, 1;" for k in range(1, 64)]
    bands = [(1 + 2 * i, 2 + 2 * i) for i in range(28)] + [(k, k) for k in range(57, 64)]
    lines += [f"0: {a}-{b}, 1, 0;" for a, b in bands]
    assert len(lines) == 100
    return "\n".join(lines) + "\n"


def flavours():
    s33 = source(33, 17)
    f = {}
    f["baseline-444-33x17.jpg"] = pil_jpeg(s33, quality=90, subsampling=0)
    f["baseline-422-33x17.jpg"] = pil_jpeg(s33, quality=90, subsampling=1)
    f["baseline-420-33x17.jpg"] = pil_jpeg(s33, quality=90, subsampling=2)
    f["baseline-420-3x5.jpg"] = pil_jpeg(source(3, 5), quality=90, subsampling=2)
    f["baseline-440-40x30.jpg"] = cjpeg(source(40, 30), "-sample", "1x2,1x1,1x1")
    f["baseline-411-45x21.jpg"] = cjpeg(source(45, 21), "-sample", "4x1,1x1,1x1")
    f["baseline-31-50x26.jpg"] = cjpeg(source(50, 26), "-sample", "3x1,1x1,1x1")
    f["baseline-mixed-2x2-1x2-2x1-41x27.jpg"] = cjpeg(source(41, 27), "-sample", "2x2,1x2,2x1")
    f["baseline-42-37x29.jpg"] = cjpeg(source(37, 29), "-sample", "4x2,1x1,1x1")
    f["baseline-chroma-larger-1x1-2x2-1x1-35x19.jpg"] = cjpeg(source(35, 19), "-sample", "1x1,2x2,1x1")
    f["progressive-420-64x48.jpg"] = pil_jpeg(source(64, 48), quality=90, subsampling=2, progressive=True)
    f["progressive-444-35x21.jpg"] = pil_jpeg(source(35, 21), quality=90, subsampling=0, progressive=True)
    f["progressive-gray-45x30.jpg"] = pil_jpeg(source(45, 30).convert("L"), quality=90, progressive=True)
    f["progressive-restart-420-50x40.jpg"] = cjpeg(source(50, 40), "-progressive", "-restart", "3B")
    f["baseline-restart-420-50x40.jpg"] = cjpeg(source(50, 40), "-restart", "2B")
    f["baseline-rgb-30x20.jpg"] = cjpeg(source(30, 20), "-rgb")
    f["sequential-multiscan-420-40x24.jpg"] = cjpeg(source(40, 24), script="0;\n1;\n2;\n")
    f["progressive-100-scans-gray-48x40.jpg"] = cjpeg(source(48, 40).convert("L"), "-grayscale", script=hundred_scans())
    cmyk = pil_jpeg(cmyk_source(37, 22), quality=90)
    f["cmyk-adobe-37x22.jpg"] = cmyk
    # The same samples read as YCCK: the Adobe marker's transform flag (payload byte 11) set to 2.
    f["ycck-adobe-37x22.jpg"] = patch(cmyk, 0xEE, 11, 2)
    f["cmyk-no-adobe-37x22.jpg"] = strip(cmyk, 0xEE)
    f["exif-orient6-24x16.jpg"] = pil_jpeg(source(24, 16), quality=90, exif=exif_orientation(6))
    base = f["baseline-420-33x17.jpg"]
    # Entropy data cut short by an EOI: libjpeg fills in gray and warns; Pillow accepts it.
    sos = find_sos(base)
    f["damaged-early-eoi-33x17.jpg"] = base[: sos + 40] + b"\xff\xd9"
    # Refused by Pillow.
    f["refused-truncated.jpg"] = base[: len(base) // 2]
    f["refused-sos-no-components.jpg"] = sos_zero_components(base)
    f["refused-sampling-5.jpg"] = patch(base, 0xC0, 7, 0x52)
    f["refused-12-bit.jpg"] = patch(base, 0xC0, 0, 12)
    # Without DHT markers libjpeg-turbo uses the standard tables (Motion-JPEG frames omit them).
    f["no-huffman-tables-33x17.jpg"] = strip_all(base, 0xC4)
    f["refused-no-quant.jpg"] = strip_all(base, 0xDB)
    prog = f["progressive-444-35x21.jpg"]
    f["refused-progressive-ss-gt-se.jpg"] = patch_scan(prog, 1, ss=5, se=2)
    f["refused-progressive-se-64.jpg"] = patch_scan(prog, 1, ss=1, se=64)
    f["refused-progressive-al-14.jpg"] = patch_scan(prog, 1, ahal=0x0E)
    f["refused-progressive-ah-al.jpg"] = patch_scan(prog, 1, ahal=0x31)
    arithmetic_flavours(f)
    # Progressive files of a DC scan alone: libjpeg smooths their blocks (DC and the first nine AC estimated).
    f["progressive-dc-only.jpg"] = cjpeg(source(20, 12), script="0,1,2: 0-0, 0, 0;\n")
    f["arithmetic-progressive-dc-only.jpg"] = cjpeg(source(20, 12), "-arithmetic", script="0,1,2: 0-0, 0, 0;\n")
    # Progressive with one scan repeated 300 times: libjpeg only warns about the bogus progression.
    f["declined-300-scans.jpg"] = repeat_last_scan(f["progressive-gray-45x30.jpg"], 300)
    return f


def exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def strip_all(data, marker):
    while any(m == marker for m, _, _ in segments(data)):
        data = strip(data, marker)
    return data


def sos_zero_components(data):
    s = find_sos(data)
    # FF DA, length 6, 0 components, Ss Se AhAl; the entropy data follows unchanged.
    return data[:s] + b"\xff\xda\x00\x06\x00\x00\x3f\x00" + data[s + 2 + struct.unpack(">H", data[s + 2 : s + 4])[0] :]


def scan_headers(data):
    """Offsets of every SOS marker (0xFF at the offset), found by walking the whole file."""
    out = []
    p = 2
    while p + 1 < len(data):
        if data[p] != 0xFF or data[p + 1] in (0x00, 0xFF) or 0xD0 <= data[p + 1] <= 0xD7:
            p += 1
            continue
        marker = data[p + 1]
        if marker == 0xD9:
            break
        length = struct.unpack(">H", data[p + 2 : p + 4])[0]
        if marker == 0xDA:
            out.append(p)
        p += 2 + length
    return out


def patch_scan(data, index, ss=None, se=None, ahal=None):
    s = scan_headers(data)[index]
    n = data[s + 4]
    p = s + 5 + 2 * n
    b = bytearray(data)
    if ss is not None:
        b[p] = ss
    if se is not None:
        b[p + 1] = se
    if ahal is not None:
        b[p + 2] = ahal
    return bytes(b)


def repeat_last_scan(data, times):
    starts = scan_headers(data)
    last = starts[-1]
    eoi = data.rindex(b"\xff\xd9")
    return data[:eoi] + data[last:eoi] * (times - len(starts)) + data[eoi:]


def pillow(path, scale):
    im = Image.open(path)
    if scale > 1:
        im.draft("RGB", (max(1, im.size[0] // scale), max(1, im.size[1] // scale)))
    im = im.convert("RGB")
    return im


def golden(path):
    entry = {}
    try:
        with Image.open(path) as im:
            entry["width"], entry["height"] = im.size
            entry["orientation"] = im.getexif().get(0x0112, 1)
    except Exception as e:  # noqa: BLE001 - Pillow's refusal is the golden
        return {"pillow": f"refused: {e}"}
    scales = {}
    for scale in (1, 2, 4, 8):
        try:
            im = pillow(path, scale)
        except Exception as e:  # noqa: BLE001
            return {"pillow": f"refused: {e}"}
        expected = (-(-entry["width"] // scale), -(-entry["height"] // scale))
        by = "pillow"
        if im.size != expected:
            # draft() cannot pick a scale above the image's width or height; the same libjpeg-turbo, run by
            # djpeg with its defaults, decodes at that scale.
            out = subprocess.run(["djpeg", "-scale", f"1/{scale}", path], check=True, capture_output=True).stdout
            im = Image.open(io.BytesIO(out)).convert("RGB")
            by = "djpeg"
        if im.size != expected:
            raise SystemExit(f"{path}: {by} gave {im.size} for scale {scale}, not {expected}")
        w, h = im.size
        digest = hashlib.sha256(im.tobytes()).hexdigest()
        scales[str(scale)] = {"width": w, "height": h, "sha256": digest, "by": by}
    entry["scales"] = scales
    entry["pillow"] = "decodes"
    return entry


def main():
    os.makedirs(OUT, exist_ok=True)
    goldens = {}
    for name, data in sorted(flavours().items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        goldens[f"jpeg/{name}"] = golden(os.path.join(OUT, name))
    for name in sorted(os.listdir(PHOTOS)):
        if name.endswith(".jpg"):
            goldens[f"images/{name}"] = golden(os.path.join(PHOTOS, name))
    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump(goldens, f, indent=1, sort_keys=True)
        f.write("\n")
    for k, v in goldens.items():
        print(k, v.get("pillow"))


if __name__ == "__main__":
    main()
