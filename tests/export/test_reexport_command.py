"""The export line an out-of-date file's warning prints (issue 29, 4): it makes every file of the folder again."""
import json

from keras_birds.export.reexport import reexport_command


def _export_json(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "export.json").write_text(json.dumps({"files": [{"file": n, "format": f, "quantize": q}
                                                              for n, f, q in files]}))


def test_the_reexport_line_names_the_folders_formats_and_where_it_is(tmp_path):
    run = tmp_path / "run"
    _export_json(run / "export", [("model.onnx", "onnx", "none"), ("model_fp32.tflite", "tflite", "none"),
                                  ("model_int8.tflite", "tflite", "int8")])
    assert reexport_command(run, run / "export" / "model_int8.tflite") == f"keras-birds export {run} --quantize none,int8"
    _export_json(tmp_path / "app", [("model_int8.tflite", "tflite", "int8")])
    assert reexport_command(run, tmp_path / "app" / "model_int8.tflite") == (
        f"keras-birds export {run} --tflite --quantize int8 --out {tmp_path / 'app'}")
    (run / "export" / "export.json").unlink()  # no record: what the file's own name says
    assert reexport_command(run, run / "export" / "model_fp16.tflite") == f"keras-birds export {run} --tflite --quantize fp16"
    assert reexport_command(run, run / "export" / "model.onnx") == f"keras-birds export {run} --onnx"
