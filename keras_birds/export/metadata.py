"""TFLite Support metadata for an image classifier, written with `flatbuffers` alone.

MediaPipe Tasks' ImageClassifier (what Android/iOS apps call) refuses a float model without
NormalizationOptions and reads class names only from a TENSOR_AXIS_LABELS file associated with the
output tensor. So every exported .tflite carries the standard metadata:

  - a `TFLITE_METADATA` entry in the model's `metadata` list whose buffer is a ModelMetadata
    flatbuffer (file identifier "M001", schema tensorflow_lite_support/metadata/metadata_schema.fbs);
  - input: ImageProperties (RGB, S x S), NormalizationOptions mean 0 / std 1 (preprocessing is
    inside the model: the app feeds raw 0-255 pixels), stats min 0 / max 255;
  - output: FeatureProperties, stats 0..1 (softmax probabilities), labels.txt as an associated file;
  - the associated files packed as an uncompressed zip appended to the model (how the metadata
    extractors of TFLite Support and MediaPipe find them).

Why written by hand rather than with tflite-support's MetadataWriter: tflite-support 0.4.4 pins
protobuf 3.20.3 (TensorFlow 2.21 in this venv needs a newer one) and needs Debian's libusb, so it
could only run in a second venv; MediaPipe's own copy of the writer comes in a 130 MB wheel with
OpenCV. The tables we need are nine small ones, whose field order is fixed by the schema (fields are
only ever appended), so ~150 lines of `flatbuffers` (already a dependency of ai-edge-litert and
TensorFlow) give the same bytes' meaning with no extra install. The model itself is re-serialised
with ai-edge-litert's generated schema classes, as TFLite Support's populator does.
Checked against the real client: tools/check_mediapipe.py loads the files in MediaPipe 1.2.3 and
compares its metadata with what MediaPipe's own writer produces.
"""
from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np
from flatbuffers.table import Table

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
# The version of the metadata parser needed to read the fields used here: all are in the 1.0.0
# schema (tflite-support metadata_version.cc raises it only for tokenizers, VOCABULARY files,
# tensor groups, subgraph process units and audio).
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"

# Enum values of metadata_schema.fbs.
_RGB = 1  # ColorSpaceType
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2  # ContentProperties union
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union
# TFLite aligns constant buffers to 16 bytes; keep it when re-serialising (kernels read them in place).
_BUFFER_ALIGNMENT = 16


# -- writing ---------------------------------------------------------------------------------------
class _Writer:
    """Tiny helpers over flatbuffers.Builder: children are built before their parent table."""

    def __init__(self):
        self.b = flatbuffers.Builder(1024)

    def string(self, s):
        return self.b.CreateString(s) if s is not None else None

    def floats(self, values):
        return self.b.CreateNumpyVector(np.asarray(values, dtype="<f4"))

    def tables(self, offsets):
        self.b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()

    def table(self, n_slots, fields):
        """fields: {slot: ("offset" | "u8" | "i8" | "u32", value)}; None values are left out."""
        self.b.StartObject(n_slots)
        for slot, (kind, value) in sorted(fields.items()):
            if value is None:
                continue
            if kind == "offset":
                self.b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "u8":
                self.b.PrependUint8Slot(slot, value, 0)
            elif kind == "i8":
                self.b.PrependInt8Slot(slot, value, 0)
            elif kind == "u32":
                self.b.PrependUint32Slot(slot, value, 0)
        return self.b.EndObject()

    def associated_file(self, name, description):
        # AssociatedFile: name, description, type, locale, version
        return self.table(5, {0: ("offset", self.string(name)), 1: ("offset", self.string(description)),
                              2: ("i8", _TENSOR_AXIS_LABELS)})

    def stats(self, lo, hi):
        return self.table(2, {0: ("offset", self.floats(hi)), 1: ("offset", self.floats(lo))})  # Stats: max, min


def build_metadata(*, image_size: int, n_classes: int, name: str, description: str, version: str = "",
                   author: str = "", license: str = "", labels_file: str = LABELS_FILE) -> bytes:
    """The ModelMetadata flatbuffer of an image classifier fed raw RGB pixels, giving probabilities."""
    w = _Writer()
    # input tensor: image, RGB, S x S, normalisation (x - 0) / 1
    size = w.table(2, {0: ("u32", image_size), 1: ("u32", image_size)})  # ImageSize: width, height
    image_props = w.table(2, {0: ("i8", _RGB), 1: ("offset", size)})  # ImageProperties: color_space, default_size
    in_content = w.table(3, {0: ("u8", _IMAGE_PROPERTIES), 1: ("offset", image_props)})
    norm = w.table(2, {0: ("offset", w.floats([0.0])), 1: ("offset", w.floats([1.0]))})  # mean, std
    unit = w.table(2, {0: ("u8", _NORMALIZATION_OPTIONS), 1: ("offset", norm)})  # ProcessUnit
    in_units = w.tables([unit])
    in_stats = w.stats([0.0], [255.0])
    in_name, in_desc = w.string("image"), w.string(
        f"RGB image, {image_size}x{image_size}, raw pixel values 0-255 (the model does its own preprocessing).")
    tensor_in = w.table(7, {0: ("offset", in_name), 1: ("offset", in_desc), 3: ("offset", in_content),
                            4: ("offset", in_units), 5: ("offset", in_stats)})
    # output tensor: probabilities over the labels in labels.txt
    feature = w.table(0, {})
    out_content = w.table(3, {0: ("u8", _FEATURE_PROPERTIES), 1: ("offset", feature)})
    out_stats = w.stats([0.0], [1.0])
    labels = w.associated_file(labels_file, f"The {n_classes} species, one per line, in output order.")
    out_files = w.tables([labels])
    out_name, out_desc = w.string("probability"), w.string(
        f"Probabilities (softmax) of the {n_classes} species, in the order of {labels_file}.")
    tensor_out = w.table(7, {0: ("offset", out_name), 1: ("offset", out_desc), 3: ("offset", out_content),
                             5: ("offset", out_stats), 6: ("offset", out_files)})
    inputs, outputs = w.tables([tensor_in]), w.tables([tensor_out])
    subgraph = w.table(7, {2: ("offset", inputs), 3: ("offset", outputs)})  # SubGraphMetadata
    subgraphs = w.tables([subgraph])
    fields = {0: w.string(name), 1: w.string(description), 2: w.string(version or None),
              4: w.string(author or None), 5: w.string(license or None), 7: w.string(MIN_PARSER_VERSION)}
    root = w.table(8, {3: ("offset", subgraphs), **{k: ("offset", v) for k, v in fields.items()}})
    w.b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(w.b.Output())


def _pack_model(model_t) -> bytes:
    """ModelT -> bytes with every constant buffer aligned to 16 bytes, as the converter writes them."""
    from ai_edge_litert import schema_py_generated as schema

    class AlignedBuffer(schema.BufferT):
        def Pack(self, builder):
            data = None
            if self.data is not None and len(self.data):
                payload = np.asarray(self.data, dtype=np.uint8).tobytes()
                builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
                builder.head -= len(payload)
                builder.Bytes[builder.head:builder.head + len(payload)] = payload
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            if self.offset:
                schema.BufferAddOffset(builder, self.offset)
            if self.size:
                schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    for i, buf in enumerate(model_t.buffers or []):
        aligned = AlignedBuffer()
        aligned.__dict__.update(buf.__dict__)
        model_t.buffers[i] = aligned
    total = sum(len(b.data) for b in model_t.buffers or [] if b.data is not None)
    builder = flatbuffers.Builder(total + (1 << 20))
    builder.Finish(model_t.Pack(builder), file_identifier=MODEL_IDENTIFIER)
    return bytes(builder.Output())


def populate(model_bytes: bytes, metadata: bytes, associated_files: dict) -> bytes:
    """A copy of the .tflite with `metadata` as its TFLITE_METADATA entry and the files zipped after it."""
    from ai_edge_litert import schema_py_generated as schema

    model_t = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    model_t.metadata = [m for m in (model_t.metadata or []) if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    model_t.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model_t.buffers) - 1
    model_t.metadata.append(entry)
    out = io.BytesIO()
    out.write(_pack_model(model_t))
    # Appending to non-zip bytes writes a zip whose offsets count from the file start: the model stays
    # a valid flatbuffer (readers ignore trailing bytes) and the file is a valid zip. Stored, not
    # deflated: the metadata extractors read the files in place and refuse compressed ones.
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as z:
        for name, data in associated_files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
            z.writestr(info, data)
    return out.getvalue()


def add_packed_file(tflite_bytes: bytes, name: str, data: bytes) -> bytes:
    """The .tflite with one more file packed beside its associated files (e.g. the unknown-species rule
    next to labels.txt); its TFLITE_METADATA and the other files stay as they were."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(tflite_bytes, 0)
    raw = next((model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes() for i in range(model.MetadataLength())
                if model.Metadata(i).Name() and model.Metadata(i).Name().decode() == METADATA_NAME), None)
    if raw is None:
        raise ValueError(f"the model has no {METADATA_NAME} to pack {name} beside")
    return populate(tflite_bytes, raw, {**associated_files(tflite_bytes), name: data})


# -- reading (tests, export.json, the check tool) ---------------------------------------------------
def _field(tab: Table, slot: int):
    o = tab.Offset(4 + 2 * slot)
    return o or None


def _str(tab, slot):
    o = _field(tab, slot)
    return tab.String(o + tab.Pos).decode() if o else None


def _sub(tab, slot):
    o = _field(tab, slot)
    return Table(tab.Bytes, tab.Indirect(o + tab.Pos)) if o else None


def _tables(tab, slot):
    o = _field(tab, slot)
    if not o:
        return []
    start, n = tab.Vector(o), tab.VectorLen(o)
    return [Table(tab.Bytes, tab.Indirect(start + 4 * i)) for i in range(n)]


def _floats(tab, slot):
    o = _field(tab, slot)
    if not o:
        return None
    return [float(x) for x in tab.GetVectorAsNumpy(flatbuffers.number_types.Float32Flags, o)]


def _byte(tab, slot):
    o = _field(tab, slot)
    return int(tab.Get(flatbuffers.number_types.Uint8Flags, o + tab.Pos)) if o else 0


def _tensor(t: Table) -> dict:
    out = {"name": _str(t, 0), "description": _str(t, 1)}
    content = _sub(t, 3)
    if content is not None:
        kind = _byte(content, 0)
        out["content"] = {_IMAGE_PROPERTIES: "image", _FEATURE_PROPERTIES: "feature"}.get(kind, kind)
        props = _sub(content, 1)
        if kind == _IMAGE_PROPERTIES and props is not None:
            out["color_space"] = {_RGB: "RGB"}.get(_byte(props, 0), _byte(props, 0))
            size = _sub(props, 1)
            if size is not None:
                out["default_size"] = [int(size.Get(flatbuffers.number_types.Uint32Flags, _field(size, s) + size.Pos))
                                       for s in (0, 1)]
    for unit in _tables(t, 4):
        if _byte(unit, 0) == _NORMALIZATION_OPTIONS:
            norm = _sub(unit, 1)
            out["normalization"] = {"mean": _floats(norm, 0), "std": _floats(norm, 1)}
    stats = _sub(t, 5)
    if stats is not None:
        out["stats"] = {"max": _floats(stats, 0), "min": _floats(stats, 1)}
    files = _tables(t, 6)
    if files:
        out["associated_files"] = [{"name": _str(f, 0), "type": _byte(f, 2)} for f in files]
    return out


def read_metadata(tflite_bytes: bytes) -> dict | None:
    """The TFLITE_METADATA of a .tflite as a dict (plus the zipped files' names), or None."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(tflite_bytes, 0)
    raw = None
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() and entry.Name().decode() == METADATA_NAME:
            raw = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    if raw is None:
        return None
    if raw[4:8] != METADATA_IDENTIFIER:
        raise ValueError(f"TFLITE_METADATA has file identifier {raw[4:8]!r}, expected {METADATA_IDENTIFIER!r}")
    root = Table(raw, flatbuffers.encode.Get(flatbuffers.packer.uoffset, raw, 0))
    subgraphs = _tables(root, 3)
    meta = {"name": _str(root, 0), "description": _str(root, 1), "version": _str(root, 2),
            "min_parser_version": _str(root, 7),
            "inputs": [_tensor(t) for t in _tables(subgraphs[0], 2)] if subgraphs else [],
            "outputs": [_tensor(t) for t in _tables(subgraphs[0], 3)] if subgraphs else []}
    meta["packed_files"] = sorted(associated_files(tflite_bytes))
    return meta


def associated_files(tflite_bytes: bytes) -> dict:
    """{name: bytes} of the files zipped after the model (empty if none)."""
    buf = io.BytesIO(tflite_bytes)
    if not zipfile.is_zipfile(buf):
        return {}
    with zipfile.ZipFile(buf) as z:
        return {info.filename: z.read(info) for info in z.infolist()}
