"""Tests of kexue_helpers.widgets: validation, the static frames against the live widget,
the frame budget and deterministic output."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kexue_helpers import widgets as W
from kexue_helpers.widgets import MAX_FRAMES, MIME_TYPE, Control, Explorable, explorable

ROOT = Path(__file__).resolve().parents[1]
SMALL = (2.0, 1.5)  # small figures keep the tests fast; the code path is the same
CAPTION = "Moving a changes the frequency."
ALT = "A sine curve over one period."


def draw(fig, *, a, kind):
    ax = fig.subplots()
    x = np.linspace(0.0, 1.0, 50)
    y = np.sin(2 * np.pi * a * x) if kind == "sin" else np.cos(2 * np.pi * a * x)
    ax.plot(x, y)
    ax.set_title(f"{kind} a={a}")


def make(**kw):
    args = dict(key="test-demo", caption="Moving $a$ changes the frequency.",
                alt=ALT, figsize=SMALL)
    args.update(kw)
    return Explorable(draw, [Control("a", [1, 2, 3], default=2),
                             Control("kind", ["sin", "cos"], label="function")], **args)


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGBA"))


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("args, kwargs, words", [
    ((3, [1, 2]), {}, ["name", "3", "str"]),
    (("2x", [1, 2]), {}, ["name", "'2x'", "identifier"]),
    (("a", "abc"), {}, ["values", "'abc'", "list or tuple"]),
    (("a", [1]), {}, ["values", "[1]", "at least two"]),
    (("a", [1, 2, 1]), {}, ["values", "distinct", "1"]),
    (("a", [1, "x"]), {}, ["values", "all numbers or all strings", "[1, 'x']"]),
    (("a", [True, False]), {}, ["values", "True", "all numbers or all strings"]),
    (("a", [1.0, float("nan")]), {}, ["values", "finite", "nan"]),
    (("a", [1, 2, 3]), {"default": 4}, ["default", "4", "[1, 2, 3]"]),
    (("a", ["x", "y"]), {"default": "z"}, ["default", "'z'", "['x', 'y']"]),
    (("a", [1, 2]), {"label": ""}, ["label", "''", "non-empty"]),
])
def test_control_validation_names_argument_value_and_expectation(args, kwargs, words):
    with pytest.raises((TypeError, ValueError)) as err:
        Control(*args, **kwargs)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_control_accepts_numpy_values_and_defaults_to_first():
    c = Control("n", np.array([10, 20, 40]))
    assert c.values == (10, 20, 40) and all(type(v) is int for v in c.values)
    assert c.default == 10 and c.default_index == 0 and c.kind == "number"
    assert c.label == "n" and c.labels == ("10", "20", "40")
    s = Control("kind", ["a", "b"], default="b")
    assert s.kind == "string" and s.default_index == 1


def test_control_labels_stay_distinct():
    c = Control("x", [1e-7, 1.0000001e-7])
    assert len(set(c.labels)) == 2


@pytest.mark.parametrize("change, words", [
    ({"draw": 3}, ["draw", "3", "draw(fig, **params)"]),
    ({"controls": []}, ["controls", "[]", "non-empty list of Control"]),
    ({"controls": [Control("a", [1, 2]), Control("a", [3, 4])]},
     ["controls", "distinct names", "'a'"]),
    ({"key": "Demo"}, ["key", "'Demo'", "<chapter-short>-<what>"]),
    ({"key": "demo"}, ["key", "'demo'", "hyphen"]),
    ({"caption": " "}, ["caption", "' '", "at least four words"]),
    ({"caption": "Moving a."}, ["caption", "'Moving a.'", "what the reader should see"]),
    ({"alt": None}, ["alt", "None", "at least four words"]),
    ({"figsize": (7.5, 3)}, ["figsize", "(7.5, 3)", "width <= 6.8"]),
    ({"figsize": "big"}, ["figsize", "'big'", "(width, height)"]),
    ({"controls": [Control("b", [1, 2])]}, ["draw", "draw(fig, b)", "keyword argument"]),
])
def test_explorable_validation_names_argument_value_and_expectation(change, words):
    args = {"draw": draw, "controls": [Control("a", [1, 2]), Control("kind", ["sin", "cos"])],
            "key": "test-demo", "caption": CAPTION, "alt": ALT, "figsize": SMALL}
    args.update(change)
    d, c = args.pop("draw"), args.pop("controls")
    with pytest.raises((TypeError, ValueError)) as err:
        Explorable(d, c, **args)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_frame_budget():
    eight = [Control(f"c{i}", list(range(8))) for i in range(2)]

    def draw2(fig, *, c0, c1):
        pass

    assert Explorable(draw2, eight, key="test-budget", caption=CAPTION, alt=ALT).n_frames == 64
    over = [Control("c0", list(range(13))), Control("c1", list(range(5)))]
    with pytest.raises(ValueError) as err:
        Explorable(draw2, over, key="test-budget", caption=CAPTION, alt=ALT)
    msg = str(err.value)
    assert "controls" in msg and "65 frames" in msg and f"at most {MAX_FRAMES}" in msg
    assert "c0: 13" in msg and "c1: 5" in msg
    # the explorable() entry point refuses it before drawing anything
    with pytest.raises(ValueError, match="65 frames"):
        explorable(draw2, over, key="test-budget", caption=CAPTION, alt=ALT)


# --------------------------------------------------------------------------- the grid

def test_frame_order_is_row_major_last_control_fastest():
    ex = make()
    settings = ex.settings()
    assert len(settings) == ex.n_frames == 6 and ex.shape == (3, 2)
    assert settings[0] == {"a": 1, "kind": "sin"} and settings[1] == {"a": 1, "kind": "cos"}
    assert [ex.frame_index(s) for s in settings] == list(range(6))
    assert ex.frame_index(ex.default_setting) == 2
    with pytest.raises(ValueError, match="each control"):
        ex.frame_index({"a": 1})
    with pytest.raises(ValueError, match="not one of the values"):
        ex.frame_index({"a": 5, "kind": "sin"})


def test_check_setting_moves_every_control():
    ex = make()
    check = ex.check_setting()
    assert all(check[c.name] != c.default for c in ex.controls)


# --------------------------------------------------------------------------- static = live

@pytest.fixture(scope="module")
def static():
    ex = make()
    bundle, metadata = ex.static_bundle()
    return ex, bundle, metadata


def test_static_bundle_layout(static):
    ex, bundle, metadata = static
    payload = bundle[MIME_TYPE]
    assert payload["key"] == "test-demo" and payload["version"] == 1
    assert len(payload["frames"]) == ex.n_frames
    assert payload["default"] == ex.frame_index(ex.default_setting)
    assert bundle["image/png"] == payload["frames"][payload["default"]]
    assert (payload["width"], payload["height"]) == (192, 144)
    assert metadata["image/png"] == {"width": 192, "height": 144}
    assert [c["name"] for c in payload["controls"]] == ["a", "kind"]
    assert payload["controls"][1]["kind"] == "string"
    assert json.loads(json.dumps(payload)) == payload  # JSON as stored in the notebook
    first = pixels(base64.b64decode(payload["frames"][0]))
    # drawn at twice the display size
    assert first.shape[:2] == (2 * 144, 2 * 192)
    assert metadata[MIME_TYPE]["cpu_seconds"] > 0 and metadata[MIME_TYPE]["bytes"] > 0


def test_frames_differ_between_settings(static):
    _, bundle, _ = static
    frames = bundle[MIME_TYPE]["frames"]
    assert len(set(frames)) == len(frames)


def test_static_frames_equal_what_the_live_widget_draws(static):
    """Drive the ipywidgets controls to every setting; the live figure's pixels equal the
    static frame's for that setting."""
    ex, bundle, _ = static
    frames = bundle[MIME_TYPE]["frames"]
    live = make()  # a fresh object: nothing cached from the static run
    box = live.live_widget()
    assert type(box.controls["a"]).__name__ == "SelectionSlider"
    assert type(box.controls["kind"]).__name__ == "Dropdown"
    assert box.controls["a"].description == "a" and box.controls["kind"].description == \
        "function"
    default = pixels(bytes(box.image.value))
    assert np.array_equal(default, pixels(base64.b64decode(frames[bundle[MIME_TYPE]
                                                                  ["default"]])))
    for k, setting in reversed(list(enumerate(ex.settings()))):
        for name, value in setting.items():
            box.controls[name].value = value
        assert np.array_equal(pixels(bytes(box.image.value)),
                              pixels(base64.b64decode(frames[k]))), setting


def test_check_frame_was_drawn_by_the_live_widget(static):
    ex, bundle, _ = static
    check = bundle[MIME_TYPE]["check"]
    assert check["setting"] == ex.check_setting()
    assert check["index"] == ex.frame_index(check["setting"])
    assert np.array_equal(pixels(base64.b64decode(check["png"])),
                          pixels(base64.b64decode(bundle[MIME_TYPE]["frames"]
                                                  [check["index"]])))


def test_quantised_frame_is_close_to_the_full_colour_drawing(static):
    """The 256-colour frame against matplotlib's own full-colour PNG of the same figure."""
    from matplotlib.figure import Figure

    ex, bundle, _ = static
    fig = Figure(figsize=SMALL, dpi=W.DISPLAY_DPI, layout="constrained")
    draw(fig, **ex.default_setting)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=W.DISPLAY_DPI * W.FRAME_SCALE)
    full = pixels(buf.getvalue())[..., :3].astype(float)
    quant = pixels(base64.b64decode(bundle["image/png"]))[..., :3].astype(float)
    assert full.shape == quant.shape
    err = np.abs(full - quant)
    assert err.mean() < 2.0, err.mean()          # of 255 levels
    assert np.mean(err.max(axis=-1) > 32) < 0.01  # under 1% of pixels visibly off


def bundle_digest() -> str:
    """SHA-256 of the static bundle drawn under matplotlib's default style (frames follow
    the global style, which other tests change: ``use_style()``)."""
    import matplotlib as mpl

    with mpl.rc_context():
        mpl.rcdefaults()
        bundle, _ = make().static_bundle()
    return hashlib.sha256(json.dumps(bundle, sort_keys=True).encode()).hexdigest()


def test_static_output_is_deterministic(static):
    ex, bundle, _ = static
    again, _ = make().static_bundle()
    assert json.dumps(again, sort_keys=True) == json.dumps(bundle, sort_keys=True)


def test_static_output_is_deterministic_across_processes():
    """Another interpreter (another hash seed) draws byte-identical frames."""
    code = ("import sys; sys.path.insert(0, %r); import tests.test_widgets as t;"
            "print(t.bundle_digest())" % str(ROOT))
    env = dict(os.environ, PYTHONHASHSEED="12345", MPLBACKEND="agg")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.split()[-1]
    assert out == bundle_digest()


# --------------------------------------------------------------------------- the one call

def test_explorable_displays_by_mode(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display",
                        lambda obj, **kw: shown.append((obj, kw)))
    monkeypatch.setenv(W.MODE_ENV, "static")
    controls = [Control("a", [1, 2]), Control("kind", ["sin", "cos"])]
    assert explorable(draw, controls, key="test-mode", caption=CAPTION, alt=ALT,
                      figsize=SMALL) is None
    obj, kw = shown.pop()
    assert kw.get("raw") is True and set(obj) == {MIME_TYPE, "image/png", "text/plain"}
    assert len(obj[MIME_TYPE]["frames"]) == 4

    monkeypatch.setenv(W.MODE_ENV, "live")
    assert explorable(draw, controls, key="test-mode", caption=CAPTION, alt=ALT,
                      figsize=SMALL) is None
    obj, _ = shown.pop()
    assert type(obj).__name__ == "VBox" and set(obj.controls) == {"a", "kind"}
    monkeypatch.delenv(W.MODE_ENV)
    assert not W.static_mode()


def test_the_build_check_sends_no_widget_to_a_frontend(monkeypatch):
    """The build draws its check setting through real ipywidgets whose comms publish
    nothing, so the executed notebook stores no widget state (no widget manager)."""
    import comm

    sent = []

    class Recording(comm.DummyComm):
        def publish_msg(self, *a, **k):
            sent.append(a)

    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: Recording(*a, **k))
    make().static_bundle()
    assert sent == []
    make().live_widget()  # the live path does talk to the frontend
    assert sent


def test_strip_frames_keeps_what_jupyter_shows(static):
    _, bundle, metadata = static
    nb = {"cells": [{"cell_type": "markdown", "source": "x"},
                    {"cell_type": "code", "outputs": [
                        {"output_type": "display_data", "data": dict(bundle),
                         "metadata": dict(metadata)},
                        {"output_type": "stream", "name": "stdout", "text": "hi"}]}]}
    assert W.strip_frames(nb) == 1
    out = nb["cells"][1]["outputs"][0]
    assert set(out["data"]) == {"image/png", "text/plain"}
    assert out["data"]["image/png"] == bundle["image/png"] and MIME_TYPE not in out["metadata"]
    assert W.strip_frames(nb) == 0
