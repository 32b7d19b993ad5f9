"""fg2u.experiment.spec: the estimator spec grammar (literals, quoting, nesting, errors naming the position and
what was expected, a normal form that round trips), completion by a benchmark's presets, and building through
both backends' registries with the same settings."""

from __future__ import annotations

import pytest

import fg2u.estimators
from fg2u.experiment.spec import Spec, SpecError, build, completed, parse, to_mapping


# ------------------------------------------------------------------------------------------- grammar
@pytest.mark.parametrize(
    "text, name, settings",
    [
        ("fg2u", "fg2u", {}),
        ("FG2U-ZO", "FG2U-ZO", {}),
        ("fg2u:num_directions=32,chunk_size=8", "fg2u", {"num_directions": 32, "chunk_size": 8}),
        (" fg2u : num_directions = 32 ,\tchunk_size=8 ", "fg2u", {"num_directions": 32, "chunk_size": 8}),
        ("a:i=-2,j=+3,f=1e-3,g=.5,h=2.,k=1E2", "a", {"i": -2, "j": 3, "f": 1e-3, "g": 0.5, "h": 2.0, "k": 100.0}),
        (
            "a:t=true,f=FALSE,n=none,m=null,s=rademacher",
            "a",
            {"t": True, "f": False, "n": None, "m": None, "s": "rademacher"},
        ),
        ("a:s='a,b(c)',d=\"x=1\"", "a", {"s": "a,b(c)", "d": "x=1"}),
        ("a:s='it\\'s',e=''", "a", {"s": "it's", "e": ""}),
        ("a:q='true',r='1'", "a", {"q": "true", "r": "1"}),  # quoted: strings, not literals
    ],
)
def test_literals(text, name, settings):
    spec = parse(text)
    assert spec.name == name and dict(spec.settings) == settings
    assert [type(v) for v in spec.settings.values()] == [type(v) for v in settings.values()]  # 2 is int, 2. float


def test_nesting_to_any_depth():
    spec = parse("two_phase:first=hessian_free, second=fg2u(num_directions=8,distribution=gaussian),switch_step=100")
    assert spec.settings == {
        "first": "hessian_free",  # a bare name stays a string until completion (it may be a plain setting)
        "second": Spec("fg2u", {"num_directions": 8, "distribution": "gaussian"}),
        "switch_step": 100,
    }
    deep = parse("a:x=b(c=d(e=f(g=1)),h=2)")
    assert deep.settings["x"].settings["c"].settings["e"] == Spec("f", {"g": 1})
    assert parse("a:x=b()").settings["x"] == Spec("b")
    assert to_mapping(spec) == {
        "name": "two_phase",
        "first": "hessian_free",
        "second": {"name": "fg2u", "num_directions": 8, "distribution": "gaussian"},
        "switch_step": 100,
    }


@pytest.mark.parametrize(
    "text, normal",
    [
        ("fg2u", "fg2u"),
        (" fg2u : num_directions = 32 , chunk_size=8 ", "fg2u:num_directions=32,chunk_size=8"),
        ("a:f=1e-3,g=.5,h=1E2,j=+3", "a:f=0.001,g=0.5,h=100.0,j=3"),
        ("a:t=TRUE,n=null", "a:t=true,n=none"),
        ("a:s=\"x y\",t='true',u='it\\'s',v=plain", "a:s='x y',t='true',u='it\\'s',v=plain"),
        (
            "two_phase:first=hessian_free,second=fg2u( num_directions=8 )",
            "two_phase:first=hessian_free,second=fg2u(num_directions=8)",
        ),
        ("a:x=b()", "a:x=b"),  # an empty nested spec is written as its bare name (the same estimator)
    ],
)
def test_str_is_a_normal_form_that_parses_back(text, normal):
    assert str(parse(text)) == normal
    assert str(parse(normal)) == normal  # idempotent
    if "()" not in text:
        assert parse(normal) == parse(text)


@pytest.mark.parametrize(
    "text, position, expected, found",
    [
        ("", 0, "a name", "the end"),
        (":x=1", 0, "a name", "':x=1'"),
        ("1abc", 0, "a name", "'1abc'"),
        ("fg2u x", 5, "':' or the end", "'x'"),
        ("fg2u:", 5, "a name", "the end"),
        ("fg2u:x", 6, "'='", "the end"),
        ("fg2u:x=", 7, "a value", "the end"),
        ("fg2u:x=0x", 7, "a value (a number, true/false/none", "'0x'"),
        ("fg2u:x=nan", 7, "a finite number or a name", "'nan'"),
        ("fg2u:x=inf,y=2", 7, "a finite number or a name", "'inf,y=2'"),
        ("fg2u:x=1e400", 7, "a finite number or a name", "'1e400'"),  # overflows to inf: refused too
        ("fg2u:x='abc", 11, "a closing '", "the end"),
        ("a:x=b(y=1", 9, "')'", "the end"),
        ("a:x=b(y=1)z", 10, "',' or the end", "'z'"),
        ("a:x=1)", 5, "',' or the end", "')'"),
        ("a:x=1,", 6, "a name", "the end"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(text, position, expected, found):
    with pytest.raises(SpecError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith(f"estimator spec {text!r}: expected {expected}")
    assert f" at position {position}, found {found} " in message
    assert "e.g. 'fg2u:num_directions=32'" in message  # the grammar, with an example, in every message
    assert isinstance(info.value, ValueError)


def test_other_errors():
    with pytest.raises(SpecError, match=r"setting 'x' is given twice"):
        parse("fg2u:x=1,x=2")
    with pytest.raises(TypeError, match=r"must be a string like 'fg2u:num_directions=8', got 3"):
        parse(3)
    with pytest.raises(SpecError, match="a spec name must be an identifier"):
        Spec("fg 2u")
    spec = Spec("fg2u", {"num_directions": 4})
    assert parse(spec) is spec


def test_spec_helpers():
    spec = parse("FG2U-ZO:num_directions=4")
    assert spec.key == "fg2u_zo"
    assert spec.with_defaults({"num_directions": 16, "eps": 1e-3}).settings == {"num_directions": 4, "eps": 1e-3}
    assert spec.replace(num_directions=8).settings == {"num_directions": 8}
    assert spec.settings == {"num_directions": 4}  # specs are values: the helpers return new ones


# ---------------------------------------------------------------------------------------- completion
PRESETS = {
    "fg2u": {"num_directions": 16, "chunk_size": 4},
    "trgu": {"truncation": 3},
    "neumann": {"num_terms": 5},
    "conjugate_gradient": {"num_iterations": 5},
    "two_phase": {"first": "hessian_free", "second": "fg2u", "switch_step": 10},
    "scaled": {"estimator": "rgu", "scale": 0.5},
    "control_variate": {"estimator": "fg2u", "surrogate": "hessian_free"},
    "running_control_variate": {"estimator": "fg2u"},
}


KNOWN = (
    *("fg2u", "fg2u_zo", "fgu", "rgu", "trgu", "rgu_checkpointed", "neumann", "conjugate_gradient", "hessian_free"),
    *("hybrid", "two_phase", "scaled", "control_variate", "running_control_variate"),
)


def presets(spec: Spec) -> Spec:
    return spec.with_defaults(PRESETS.get(spec.key, {}))


def test_presets_fill_what_a_spec_leaves_out_innermost_first():
    assert completed("fg2u", presets) == Spec("fg2u", {"num_directions": 16, "chunk_size": 4})
    assert completed("fg2u:num_directions=2", presets).settings == {"num_directions": 2, "chunk_size": 4}
    # nested estimators the user gives are completed, their given settings win
    spec = completed("two_phase:second=fg2u(chunk_size=1),switch_step=3", presets)
    assert spec.settings["second"] == Spec("fg2u", {"chunk_size": 1, "num_directions": 16})
    assert spec.settings["switch_step"] == 3
    # nested estimators a preset adds (second="fg2u") are completed too
    spec = completed("two_phase", presets)
    assert spec.settings == {
        "first": Spec("hessian_free"),
        "second": Spec("fg2u", {"num_directions": 16, "chunk_size": 4}),
        "switch_step": 10,
    }
    # a bare string that names no estimator stays a plain setting
    assert completed("fg2u:distribution=gaussian", presets).settings["distribution"] == "gaussian"
    assert completed("fg2u") == Spec("fg2u")  # no presets: the spec as parsed


def test_a_wrapper_returned_by_a_completion_is_final():
    calls = []

    def wrap_implicit(spec: Spec) -> Spec:
        calls.append(str(spec))
        spec = presets(spec)
        if spec.key == "hessian_free":
            return Spec("scaled", {"estimator": spec, "scale": 2.0})  # would recurse forever if completed again
        return spec

    wrapped = Spec("scaled", {"estimator": Spec("hessian_free"), "scale": 2.0})
    assert completed("hessian_free", wrap_implicit) == wrapped
    assert calls == ["hessian_free"]
    calls.clear()
    spec = completed("two_phase", wrap_implicit)
    assert spec.settings["first"] == wrapped  # added by the preset, completed, wrapped once
    assert spec.settings["second"] == Spec("fg2u", {"num_directions": 16, "chunk_size": 4})
    assert calls == ["two_phase", "hessian_free", "fg2u"]  # one call per estimator, none for the wrapper


# -------------------------------------------------------------------------------------------- build
@pytest.fixture(scope="module")
def backends():
    fj = pytest.importorskip("fg2u.jax")
    ft = pytest.importorskip("fg2u.torch")
    return fj, ft


def test_build_matches_direct_construction(backends):
    for m in backends:
        assert build("fg2u:num_directions=32,chunk_size=8", m.BACKEND) == m.FG2U(num_directions=32, chunk_size=8)
        assert build("two_phase:first=rgu,second=fg2u(num_directions=2),switch_step=7", m.BACKEND) == m.TwoPhase(
            m.RGU(), m.FG2U(num_directions=2), switch_step=7
        )
        assert build("trgu", m.BACKEND, complete=presets) == m.TRGU(3)
        assert build("two_phase", m.BACKEND, complete=presets) == m.TwoPhase(
            m.HessianFree(), m.FG2U(num_directions=16, chunk_size=4), switch_step=10
        )


def test_every_registered_name_builds_the_same_settings_in_both_backends(backends):
    """For every name, both backends build estimators with equal ``settings()`` — or refuse it with the same
    error (a name whose required settings no preset here gives). A spec means the same thing in both."""
    fj, ft = backends
    names = fg2u.estimators.names()
    assert set(fj.BACKEND.names()) == set(ft.BACKEND.names()) == set(names)
    built = set()
    for name in names:
        results = []
        for m in (fj, ft):
            try:
                results.append(build(name, m.BACKEND, complete=presets).settings())
            except (TypeError, ValueError) as error:
                results.append(f"{type(error).__name__}: {error}")
        assert results[0] == results[1], name
        if isinstance(results[0], dict):
            built.add(name)
    # the names registered when this test was written all build with PRESETS (a newer one may need more)
    assert set(names) & set(KNOWN) <= built


@pytest.mark.parametrize(
    "text",
    [
        "fg2u:num_directions=32,chunk_size=8,distribution=gaussian",
        "two_phase:first=hessian_free,second=fg2u(num_directions=8),switch_step=100",
        "scaled:estimator=neumann(num_terms=3),scale=0.5",
        "control_variate:estimator=fg2u(num_directions=2),surrogate=hessian_free",
    ],
)
def test_specs_with_settings_build_the_same_settings_in_both_backends(backends, text):
    fj, ft = backends
    settings = build(text, fj.BACKEND).settings()
    assert settings == build(text, ft.BACKEND).settings()
    assert build(text, fj.BACKEND) == build(str(parse(text)), fj.BACKEND)  # the normal form builds the same


def test_build_errors_name_the_bad_setting_or_name(backends):
    fj, _ = backends
    with pytest.raises(TypeError, match="FG2U has no setting.s. num_dirs; its settings are num_directions"):
        build("fg2u:num_dirs=3", fj.BACKEND)
    with pytest.raises(ValueError, match="unknown estimator 'fg3u'; choose one of fg2u"):
        build("fg3u", fj.BACKEND)
    with pytest.raises(TypeError, match="has no setting.s. bogus"):
        build("two_phase:first=rgu,second=fg2u(bogus=1)", fj.BACKEND)
    with pytest.raises(SpecError, match="position"):
        build("fg2u:num_directions=", fj.BACKEND)
