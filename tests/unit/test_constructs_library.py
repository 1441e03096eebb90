"""The design card's top-level `constructs/` folder must never shadow the jsii `constructs` library."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_constructs_is_the_jsii_library():
    import constructs

    origin = Path(constructs.__file__).resolve()
    assert origin.parent != (REPO / "constructs").resolve(), f"`constructs` resolved to the repository folder: {origin}"
    assert "site-packages" in origin.parts, origin
    assert hasattr(constructs, "Construct") and hasattr(constructs, "Node")


def test_project_constructs_live_under_tierwise():
    import tierwise.constructs.kubernetes as k

    assert Path(k.__file__).resolve().parent.name == "constructs"
    assert k.KubernetesObject.__mro__[1].__module__.startswith("constructs")  # subclasses the library's Construct
