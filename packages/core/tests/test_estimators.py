"""fg2u.estimators: one settings class per estimator, the name registry, and both backends exposing the same
estimators with the same fields and defaults."""

from __future__ import annotations

import dataclasses
import json

import pytest

import fg2u.estimators as est


def test_every_registered_estimator_has_name_display_and_docstring():
    assert set(est.names()) >= {
        "fg2u",
        "fg2u_zo",
        "fgu",
        "rgu",
        "trgu",
        "rgu_checkpointed",
        "neumann",
        "conjugate_gradient",
        "hessian_free",
        "two_phase",
        "scaled",
        "control_variate",
        "running_control_variate",
    }
    for name in est.names():
        cls = est.get_spec(name)
        assert cls.name == name and cls.display == cls.__name__
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
        assert cls.__doc__ and len(cls.__doc__.strip()) > 40, f"{cls.__name__} needs a docstring"


@pytest.mark.parametrize(
    "alias,name",
    [
        ("FG2U", "fg2u"),
        ("fg2u-zo", "fg2u_zo"),
        ("HessianFree", "hessian_free"),
        ("RGUCheckpointed", "rgu_checkpointed"),
        (" TRGU ", "trgu"),
    ],
)
def test_names_are_found_by_registry_or_display_name(alias, name):
    assert est.get_spec(alias) is est.get_spec(name)


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown estimator 'fg3u'.*fg2u.*rgu"):
        est.get_spec("fg3u")


def test_settings_classes_validate_and_refuse_to_run_without_a_backend():
    with pytest.raises(ValueError, match="num_directions"):
        est.FG2U(num_directions=0)
    with pytest.raises(NotImplementedError, match=r"fg2u\.jax\.FG2U or fg2u\.torch\.FG2U.*make\('fg2u'"):
        est.FG2U(4)(None, None, None)


def test_settings_are_json_and_name_nested_estimators():
    s = est.FG2U(8, chunk_size=2).settings()
    assert s == {
        "estimator": "FG2U",
        "num_directions": 8,
        "distribution": "rademacher",
        "chunk_size": 2,
        "check_finite": False,
    }
    two = est.TwoPhase.__new__(est.TwoPhase)  # settings() does not need a backend
    object.__setattr__(two, "first", est.HessianFree(alpha=2.0))
    object.__setattr__(two, "second", est.FG2U(4))
    object.__setattr__(two, "switch_step", 5)
    nested = two.settings()
    assert nested["first"] == {"estimator": "HessianFree", "alpha": 2.0, "check_finite": False}
    assert nested["second"]["num_directions"] == 4 and nested["switch_step"] == 5
    json.dumps(nested)


BACKENDS = ["jax", "torch"]


def _backend(label):
    return pytest.importorskip(f"fg2u.{label}")


@pytest.mark.parametrize("label", BACKENDS)
def test_backend_implements_every_registered_estimator(label):
    backend = _backend(label)
    assert set(backend.BACKEND.names()) == set(est.names())
    for name in est.names():
        cls = backend.BACKEND.get(name)
        spec = est.get_spec(name)
        assert issubclass(cls, spec) and cls.__name__ == spec.__name__
        assert getattr(backend, cls.__name__) is cls, f"fg2u.{label}.{cls.__name__} must be the registered class"
        assert cls.__doc__, f"fg2u.{label}.{cls.__name__} needs a docstring"
        # the literal export lists (kept literal for type checkers' explicit re-exports) name every estimator
        assert cls.__name__ in backend.__all__ and cls.__name__ in est.__all__, f"add {cls.__name__} to __all__"


def test_both_backends_expose_the_same_fields_and_defaults():
    fj, ft = _backend("jax"), _backend("torch")
    for name in est.names():
        jf = [(f.name, f.default, f.type) for f in dataclasses.fields(fj.BACKEND.get(name))]
        tf = [(f.name, f.default, f.type) for f in dataclasses.fields(ft.BACKEND.get(name))]
        sf = [(f.name, f.default, f.type) for f in dataclasses.fields(est.get_spec(name))]
        assert jf == tf == sf, name


@pytest.mark.parametrize("label", BACKENDS)
def test_make_builds_nested_estimators_and_rejects_unknown_settings(label):
    backend = _backend(label)
    two = backend.make("two_phase", first={"name": "hessian_free", "alpha": 3.0}, second="fg2u", switch_step=2)
    assert two == backend.TwoPhase(backend.HessianFree(alpha=3.0), backend.FG2U(), 2)
    assert backend.make("FG2U", num_directions=8) == backend.FG2U(num_directions=8)
    with pytest.raises(TypeError, match="has no setting.*num_direction\\b.*settings are num_directions"):
        backend.make("fg2u", num_direction=8)
    with pytest.raises(ValueError, match="needs a 'name' key"):
        backend.make("scaled", estimator={"alpha": 1.0}, scale=2.0)


@pytest.mark.parametrize("label", BACKENDS)
def test_every_estimator_follows_the_protocol(label):
    from fg2u.estimator import MetaGradientEstimator

    backend = _backend(label)
    for name in est.names():
        cls = backend.BACKEND.get(name)
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        examples = {
            "truncation": 2,
            "num_terms": 2,
            "num_iterations": 2,
            "first": backend.RGU(),
            "second": backend.RGU(),
            "estimator": backend.FG2U(2),
            "surrogate": backend.RGU(),
        }
        obj = cls(**{k: examples[k] for k in required})
        assert isinstance(obj, MetaGradientEstimator)
        assert obj.display_name == cls.__name__ or name == "scaled"
