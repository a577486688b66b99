"""Tests of kexue_helpers.core, plotting and book (device, scale, seeding, validation, glue)."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pytest
import torch

import kexue_helpers as kh
from kexue_helpers import book, core, plotting


# ---------------------------------------------------------------- validation
def test_check_int_accepts_python_and_numpy_integers():
    assert core.check_int(3, "n") == 3
    assert core.check_int(np.int64(7), "n", minimum=2, maximum=7) == 7
    assert type(core.check_int(np.int32(4), "n")) is int


@pytest.mark.parametrize("bad", [2.0, 2.5, True, "3", None])
def test_check_int_rejects_non_integers(bad):
    with pytest.raises(TypeError, match=r"n_points must be an integer; got"):
        core.check_int(bad, "n_points")


def test_check_int_range_messages_name_argument_value_and_bound():
    with pytest.raises(ValueError, match=r"n_points must be an integer >= 2; got 1"):
        core.check_int(1, "n_points", minimum=2)
    with pytest.raises(ValueError, match=r"k must be an integer <= 5; got 6"):
        core.check_int(6, "k", maximum=5)


def test_check_real_intervals():
    assert core.check_real(0.5, "eps", low=0, high=1) == 0.5
    assert core.check_real(np.float32(0.25), "eps", low=0, high=1) == 0.25
    assert core.check_real(torch.tensor(0.5), "eps", low=0, high=1) == 0.5
    assert core.check_real(0.0, "x", low=0.0, low_open=False) == 0.0
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"eps must lie in \(0\.0, 1\.0\); got"):
            core.check_real(bad, "eps", low=0.0, high=1.0)
    with pytest.raises(ValueError, match="eps must be a finite number"):
        core.check_real(float("nan"), "eps", low=0.0, high=1.0)
    with pytest.raises(ValueError, match="finite"):
        core.check_real(float("inf"), "sigma")
    with pytest.raises(TypeError, match="sigma must be a real number"):
        core.check_real("1", "sigma")
    with pytest.raises(TypeError, match="sigma must be a real number"):
        core.check_real(True, "sigma")


def test_check_choice():
    assert core.check_choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"mode must be one of 'a', 'b'; got 'c'"):
        core.check_choice("c", "mode", ("a", "b"))


# ---------------------------------------------------------------- device and scale
def test_get_device_default_is_cpu_without_accelerators(monkeypatch):
    monkeypatch.delenv(core.DEVICE_ENV, raising=False)
    dev = core.get_device()
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        assert dev.type == "mps"
    else:
        assert dev == torch.device("cpu")


def test_get_device_argument_and_environment_override(monkeypatch):
    monkeypatch.setenv(core.DEVICE_ENV, "cpu")
    assert core.get_device() == torch.device("cpu")
    assert core.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(core.DEVICE_ENV, "not-a-device")
    with pytest.raises(ValueError, match=r"environment variable KEXUE_DEVICE must name a torch "
                                         r"device.*got 'not-a-device'"):
        core.get_device()
    with pytest.raises(ValueError, match="device must name a torch device"):
        core.get_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_get_device_refuses_unavailable_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        core.get_device("cuda")


def test_scale_follows_device_and_environment(monkeypatch):
    monkeypatch.delenv(core.SCALE_ENV, raising=False)
    monkeypatch.setenv(core.DEVICE_ENV, "cpu")
    assert core.get_scale() == "small"
    assert core.scaled(small=1, full=2) == 1
    monkeypatch.setenv(core.SCALE_ENV, "full")
    assert core.get_scale() == "full"
    assert core.scaled(small=1, full=2) == 2
    monkeypatch.setenv(core.SCALE_ENV, "huge")
    with pytest.raises(ValueError, match=r"KEXUE_SCALE must be one of 'small', 'full'; got 'huge'"):
        core.get_scale()


# ---------------------------------------------------------------- randomness
def test_seed_everything_makes_all_generators_repeat():
    core.seed_everything(123)
    a = (np.random.rand(), torch.rand(3), __import__("random").random())
    core.seed_everything(123)
    b = (np.random.rand(), torch.rand(3), __import__("random").random())
    assert a[0] == b[0] and torch.equal(a[1], b[1]) and a[2] == b[2]
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        core.seed_everything(-1)


def test_make_generator_seeded_and_unseeded():
    x = torch.randn(5, generator=core.make_generator(4))
    y = torch.randn(5, generator=core.make_generator(4))
    assert torch.equal(x, y)
    core.seed_everything(9)
    u = torch.randn(5, generator=core.make_generator())
    core.seed_everything(9)
    v = torch.randn(5, generator=core.make_generator())
    assert torch.equal(u, v)  # None follows the global seed
    with pytest.raises(TypeError, match="seed must be an integer"):
        core.make_generator(1.5)


def test_cpu_threads_sets_and_restores(monkeypatch):
    monkeypatch.setenv(core.DEVICE_ENV, "cpu")
    before = torch.get_num_threads()
    with core.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with core.cpu_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with core.cpu_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads must be an integer >= 1; got 0"):
        with core.cpu_threads(0):
            pass


# ---------------------------------------------------------------- arrays
def test_as_tensor_dtypes_and_device():
    t = core.as_tensor([[1, 2], [3, 4]], "x", ndim=2, device="cpu")
    assert t.dtype == torch.float64 and t.device.type == "cpu"
    t32 = core.as_tensor(np.ones((2, 2), np.float32), "x", device="cpu")
    assert t32.dtype == torch.float32
    assert core.as_tensor(torch.ones(3), "x", dtype=torch.float64, device="cpu").dtype == torch.float64


def test_as_tensor_keeps_zero_dimensional_input():
    assert core.as_tensor(np.float64(2.0), "x", device="cpu").shape == ()
    assert core.as_tensor(3.0, "x", device="cpu").shape == ()


def test_as_tensor_rejects_bad_input():
    with pytest.raises(ValueError, match=r"x must have 2 dimension\(s\); got shape \(3,\)"):
        core.as_tensor(np.ones(3), "x", ndim=2)
    with pytest.raises(ValueError, match="x must not be empty"):
        core.as_tensor(np.ones((0, 2)), "x")
    with pytest.raises(ValueError, match="y must contain only finite values; found 1 NaN"):
        core.as_tensor([1.0, float("nan")], "y")
    with pytest.raises(TypeError, match="x must be a numeric array"):
        core.as_tensor(["a", "b"], "x")


def test_to_numpy_roundtrip():
    arr = np.arange(4.0)
    assert core.to_numpy(arr) is not None and np.array_equal(core.to_numpy(torch.arange(4.0)), arr)
    assert np.array_equal(kh.to_numpy(arr), arr)


# ---------------------------------------------------------------- plotting and glue
def test_use_style_sets_opaque_background_and_palette():
    plotting.use_style()
    assert mpl.rcParams["figure.facecolor"] == "white"
    assert mpl.rcParams["savefig.facecolor"] == "white"
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    assert [c.lower() for c in colors] == [c.lower() for c in plotting.PALETTE]


def test_use_style_draws_at_column_width_with_readable_fonts():
    from matplotlib.font_manager import FontProperties

    plotting.use_style()
    assert tuple(mpl.rcParams["figure.figsize"])[0] == plotting.COLUMN_WIDTH == kh.COLUMN_WIDTH
    assert plotting.COLUMN_WIDTH * 96 <= 688  # fits the 688 px text column at 1280 px
    assert mpl.rcParams["figure.dpi"] == 96  # shown at its drawn size: 1 in = 96 CSS px
    keys = ["font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
            "ytick.labelsize", "legend.fontsize", "legend.title_fontsize", "figure.titlesize"]
    sizes = {}
    for key in keys:
        value = mpl.rcParams[key]
        sizes[key] = FontProperties(size=value).get_size_in_points()
    assert min(sizes.values()) >= plotting.MIN_FONT_PT >= 9, sizes
    # what a drawn figure actually uses, legends and ticks included
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="a")
    leg = ax.legend()
    fig.canvas.draw()
    texts = [t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    texts += [t.get_fontsize() for t in leg.get_texts()]
    plt.close(fig)
    assert texts and min(texts) >= plotting.MIN_FONT_PT


def test_use_style_validates_output():
    with pytest.raises(ValueError, match=r"output must be one of \('svg', 'png2x'\); got 'pdf'"):
        plotting.use_style(output="pdf")


def test_use_style_selects_the_inline_format_in_a_kernel():
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    shell = InteractiveShell.instance()
    try:
        formatters = shell.display_formatter.formatters
        plotting.use_style()
        assert Figure in formatters["image/svg+xml"].type_printers
        assert Figure not in formatters["image/png"].type_printers
        plotting.use_style(output="png2x")
        assert Figure in formatters["image/png"].type_printers
        assert Figure not in formatters["image/svg+xml"].type_printers
        fig = Figure(figsize=(plotting.COLUMN_WIDTH, 2))
        fig.subplots().plot([0, 1])
        data, meta = shell.display_formatter.format(fig)
        # pixel-doubled, shown at its drawn size: about the column width (6.8 in at 96
        # px per inch, less what the inline backend crops around the axes)
        import base64
        import struct

        png = data["image/png"]
        png = base64.b64decode(png) if isinstance(png, str) else png
        png_width = struct.unpack(">I", png[16:20])[0]
        shown = meta["image/png"]["width"]
        assert png_width in (2 * shown, 2 * shown + 1)
        assert 0.9 * plotting.COLUMN_WIDTH * 96 <= shown <= plotting.COLUMN_WIDTH * 96 + 2
    finally:
        plotting.use_style()
        InteractiveShell.clear_instance()


def test_plain_converts_numpy_and_torch_scalars():
    assert book.plain(np.float64(0.5)) == 0.5 and type(book.plain(np.float64(0.5))) is float
    assert type(book.plain(np.int64(3))) is int
    assert type(book.plain(np.array(2.0))) is float
    assert type(book.plain(torch.tensor(3))) is int
    assert book.plain("text") == "text"
    arr = np.ones(3)
    assert book.plain(arr) is arr


def test_glue_glues_plain_value_and_returns_none(monkeypatch):
    import myst_nb

    glued = {}
    monkeypatch.setattr(myst_nb, "glue",
                        lambda name, value, display=True: glued.update({name: (value, display)}))
    assert book.glue("test_key", np.float64(0.25)) is None
    assert glued == {"test_key": (0.25, False)} and type(glued["test_key"][0]) is float
    assert book.glue("test_tensor", torch.tensor(3), display=True) is None
    assert glued["test_tensor"] == (3, True) and type(glued["test_tensor"][0]) is int
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        book.glue("", 1.0)


def test_glue_without_myst_nb_checks_the_name_and_does_nothing(monkeypatch):
    """A published notebook run where the book's build tools are absent (Colab)."""
    import builtins

    real_import = builtins.__import__

    def no_myst_nb(name, *args, **kwargs):
        if name == "myst_nb" or name.startswith("myst_nb."):
            raise ImportError("No module named 'myst_nb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    assert book.glue("test_key", np.float64(0.25)) is None
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        book.glue("", 1.0)
