from __future__ import annotations

from PIL import Image

from rectrain.cli.main import main
from rectrain.data.synth import NO_EFFECTS, synthesize


def test_report_writes_pngs(tmp_path, capsys):
    out = synthesize(["สวัสดี", "น้ำ", "ที่"], tmp_path / "syn", 6, workers=1, effects=NO_EFFECTS)
    rep = str(tmp_path / "rep")
    assert main(["data", "report", str(out / "labels.txt"), "-o", rep, "--samples", "4"]) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(p.rsplit("/", 1)[-1] for p in printed)
    assert names == ["char_frequency.png", "image_size.png", "label_length.png", "samples.png"]
    for name in names:
        with Image.open(tmp_path / "rep" / name) as im:
            assert im.width > 100 and im.height > 50
    assert main(["data", "report", str(tmp_path / "none.txt"), "-o", str(tmp_path / "rep")]) == 2
