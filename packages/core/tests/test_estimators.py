"""fg2u.estimators: one settings class per estimator, the name registry, and both backends exposing the same
estimators with the same fields and defaults."""

from __future__ import annotations

import dataclasses
import doctest
import json
import re

import numpy as np
import pytest

import fg2u
import fg2u.estimators as est

ALIASES = {"neumann": "Neumann", "conjugate_gradient": "ConjugateGradient", "hessian_free": "HessianFree"}


def test_every_registered_estimator_has_name_display_and_docstring():
    assert set(est.names()) >= {
        "fg2u",
        "fg2u_zo",
        "fgu",
        "rgu",
        "trgu",
        "rgu_checkpointed",
        "rgu_recursive",
        "implicit",
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
        assert cls.__doc__ and len(cls.__doc__.strip()) > 40, f"{cls.__name__} needs a docstring"
        if name in ALIASES:
            assert isinstance(cls, est.Alias) and cls.target is est.Implicit and cls.display == ALIASES[name]
            continue
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


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


@pytest.mark.parametrize("name", ["fg2u", "rgu", "implicit", "neumann", "hessian_free", "two_phase", "scaled"])
def test_settings_classes_are_abstract_and_name_the_backend_classes(name):
    spec = est.get_spec(name)
    display = spec.__name__
    message = rf"fg2u\.estimators\.{display} holds the settings only.*fg2u\.jax\.{display}\(\.\.\.\) or fg2u\.torch\.{display}"
    with pytest.raises(TypeError, match=message + rf".*make\('{name}'"):
        spec()
    with pytest.raises(TypeError, match=message):  # also before any settings check (4 is a valid b, 0 is not)
        spec(0) if name not in ("two_phase", "scaled") else spec(None, None)


BACKENDS = ["jax", "torch"]


def _backend(label):
    return pytest.importorskip(f"fg2u.{label}")


@pytest.mark.parametrize("label", BACKENDS)
def test_kernels_validate_their_settings(label):
    backend = _backend(label)
    with pytest.raises(ValueError, match="num_directions"):
        backend.FG2U(num_directions=0)
    with pytest.raises(ValueError, match="num_terms"):
        backend.Implicit(solve=backend.neumann(-1))


@pytest.mark.parametrize("label", BACKENDS)
def test_settings_are_json_and_name_nested_estimators(label):
    backend = _backend(label)
    s = backend.FG2U(8, chunk_size=2).settings()
    assert s == {
        "estimator": "FG2U",
        "num_directions": 8,
        "distribution": "rademacher",
        "chunk_size": 2,
        "check_finite": False,
    }
    nested = backend.TwoPhase(backend.HessianFree(alpha=2.0), backend.FG2U(4), switch_step=5).settings()
    assert nested["first"] == {"estimator": "HessianFree", "alpha": 2.0, "check_finite": False}
    assert nested["second"]["num_directions"] == 4 and nested["switch_step"] == 5
    json.dumps(nested)


@pytest.mark.parametrize("label", BACKENDS)
def test_backend_implements_every_registered_estimator(label):
    backend = _backend(label)
    assert set(backend.BACKEND.names()) == set(est.names())
    for name in est.names():
        cls = backend.BACKEND.get(name)
        spec = est.get_spec(name)
        if name in ALIASES:  # an alias bound to the backend's Implicit
            assert isinstance(cls, est.Alias) and cls.target is backend.Implicit and cls.__name__ == spec.__name__
        else:
            assert issubclass(cls, spec) and cls.__name__ == spec.__name__
            assert cls.__final__, f"fg2u.{label}.{cls.__name__} must be typing.final"
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
        assert obj.display_name == cls.__name__ or name in ("scaled", "implicit")


def _problem(label):
    """θ_{t+1} = (θ_t + φ)/2, F = ‖θ_T‖², T = 10: the problem of the docstring examples."""
    if label == "jax":
        import jax.numpy as xp
    else:
        import torch as xp
    return fg2u.UnrolledProblem(
        init=lambda phi: xp.zeros(2),
        step=lambda th, phi, _: (th + phi) / 2,
        outer_loss=lambda th, phi, _: (th**2).sum(),
        num_steps=10,
    ), xp.asarray([1.0, -2.0]) if label == "jax" else xp.tensor([1.0, -2.0])


@pytest.mark.parametrize("label", BACKENDS)
def test_calling_the_class_like_an_estimator_says_to_build_it_first(label):
    backend = _backend(label)
    problem, phi = _problem(label)
    for name in est.names():
        cls = backend.BACKEND.get(name)
        display = cls.__name__
        want = (
            re.escape(f"{display}(...) takes settings; build it, then call it: {display}(")
            + r".*\)\(problem, phi, key\)$"
        )
        with pytest.raises(TypeError, match=want):
            cls(problem, phi, None)
        with pytest.raises(TypeError, match=want):  # a problem given by keyword, or as a later setting
            cls(**{dataclasses.fields(cls)[-1].name: problem})
    with pytest.raises(TypeError, match=re.escape("FG2U(num_directions=8)(problem, phi, key)")):
        backend.FG2U(problem, phi, 0)


@pytest.mark.parametrize("label", BACKENDS)
def test_kernels_are_final_and_complete(label):
    backend = _backend(label)
    with pytest.raises(TypeError, match=rf"fg2u\.{label}\.forward\.FG2U is final"):
        type("MyFG2U", (backend.FG2U,), {})
    with pytest.raises(TypeError, match="must implement __call__"):
        type("Incomplete", (est.RGU,), {})  # a kernel without __call__ (nor ops) fails when defined
    with pytest.raises(TypeError, match="must implement with_directions"):
        type("Incomplete", (est.FG2U,), {"__call__": lambda self, problem, phi, key: None})


@pytest.mark.parametrize("label", BACKENDS)
@pytest.mark.parametrize("name", est.names())
def test_docstring_examples_run(label, name):
    """Every estimator's public docstring carries ``Examples:`` that run as doctests."""
    obj = _backend(label).BACKEND.get(name)
    assert "Examples:" in obj.__doc__, f"fg2u.{label}.{obj.__name__} needs Examples:"
    tests = doctest.DocTestFinder(recurse=False).find(obj, obj.__name__, module=False, globs={})
    assert sum(len(t.examples) for t in tests) >= 3, f"fg2u.{label}.{obj.__name__}: no doctest found"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"fg2u.{label}.{obj.__name__}: {runner.failures} failing example(s), see above"


# the estimators that come from papers: their settings docstrings cite them, with links
PAPER_BASED = (
    "fg2u",
    "fg2u_zo",
    "fgu",
    "rgu",
    "trgu",
    "rgu_checkpointed",
    "rgu_recursive",
    "implicit",
    "neumann",
    "conjugate_gradient",
    "hessian_free",
    "hybrid",
    "two_phase",
)


@pytest.mark.parametrize("name", PAPER_BASED)
def test_paper_based_estimators_cite_their_papers(name):
    doc = est.get_spec(name).__doc__
    references = doc[doc.index("References") :] if "References" in doc else ""
    assert re.search(r"https://(arxiv\.org/abs|doi\.org|docs\.)", references), f"{name}: References: with links"


@pytest.mark.slow
def test_aliases_are_implicit_with_their_solve_and_keep_their_record_names(side):
    m = side.m
    cases = [
        (m.Neumann(5, alpha=0.5), m.Implicit(solve=m.neumann(5, alpha=0.5)), m.make("neumann", num_terms=5, alpha=0.5)),
        (
            m.ConjugateGradient(3),
            m.Implicit(solve=m.conjugate_gradient(3)),
            m.make("conjugate_gradient", num_iterations=3),
        ),
        (m.HessianFree(alpha=10.0), m.Implicit(solve=m.identity(10.0)), m.make("hessian_free", alpha=10.0)),
    ]
    records = [
        {"estimator": "Neumann", "num_terms": 5, "alpha": 0.5, "check_finite": False},
        {"estimator": "ConjugateGradient", "num_iterations": 3, "check_finite": False},
        {"estimator": "HessianFree", "alpha": 10.0, "check_finite": False},
    ]
    rng = np.random.default_rng(0)
    a0 = rng.normal(size=(4, 4))
    a = a0 @ a0.T / 4 + 0.5 * np.eye(4)
    problem = side.linear_problem(
        a, rng.normal(size=(4, 3)), rng.normal(size=(2, 4)), rng.normal(size=2), np.full(20, 0.2)
    )
    phi = side.array(rng.normal(size=3))
    for (alias, explicit, by_name), record in zip(cases, records):
        assert alias == explicit == by_name and type(alias) is m.Implicit
        assert alias.display_name == record["estimator"] and alias.settings() == record
        got, aux = alias(problem, phi, None)
        want, want_aux = explicit(problem, phi, None)
        assert np.array_equal(side.np(got), side.np(want)) and float(aux.outer_loss) == float(want_aux.outer_loss)
    # Neumann(0, α) = HessianFree(α): the same w = α∇_θF, computed by two solves
    np.testing.assert_allclose(
        side.np(m.Neumann(0, alpha=2.0)(problem, phi, None)[0]),
        side.np(m.HessianFree(2.0)(problem, phi, None)[0]),
        rtol=1e-12,
    )


def test_implicit_solve_settings(side):
    m = side.m
    assert m.Implicit(solve="identity") == m.HessianFree()
    assert m.Implicit(solve={"name": "cg", "num_iterations": 4}) == m.ConjugateGradient(4)
    assert m.make("implicit", solve={"name": "neumann", "num_terms": 2}) == m.Neumann(2)
    assert m.Implicit().solve == m.neumann(10)  # the default: converges for any contracting inner map
    with pytest.raises(ValueError, match="unknown solve 'lu'; choose one of neumann, conjugate_gradient"):
        m.Implicit(solve="lu")
    with pytest.raises(TypeError, match=r"solve must be fg2u\.estimators\.neumann\(num_terms, alpha\)"):
        m.Implicit(solve=3)
    with pytest.raises(
        TypeError, match="Neumann: missing a required argument: 'num_terms'; its settings are num_terms"
    ):
        m.Neumann()
    with pytest.raises(TypeError, match="Neumann has no setting.*num_iterations"):
        m.make("neumann", num_iterations=3)
