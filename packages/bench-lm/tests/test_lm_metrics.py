"""SQuAD normalisation, exact match (strict / prefix) and token F1 against hand-computed cases."""

import pytest

from fg2u_bench_lm.evaluate import exact_match, normalize_answer, prefix_exact_match, score_predictions, token_f1


def test_normalize_answer_squad_rules():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("  ") == ""


def test_exact_match_strict():
    assert exact_match("the Eiffel Tower.", ["Eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel tower"]) == 0.0
    assert exact_match("Paris, France", ["Paris"]) == 0.0
    assert exact_match("1889", ["4 June 1889", "1889"]) == 1.0  # max over gold answers


def test_prefix_exact_match_truncates_prediction_to_gold_length():
    assert prefix_exact_match("Paris, France is nice", ["Paris"]) == 1.0
    assert prefix_exact_match("the 4 June 1889 was", ["4 June 1889"]) == 1.0
    assert prefix_exact_match("June 4 1889", ["4 June 1889"]) == 0.0
    assert prefix_exact_match("Par", ["Paris"]) == 0.0


def test_token_f1_hand_computed():
    # pred -> [cat, sat, on, mat] (4), gold -> [cat, on, mat] (3); 3 common: P=3/4, R=1, F1=6/7
    assert token_f1("the cat sat on mat", ["a cat on the mat"]) == pytest.approx(6 / 7)
    # multiset overlap: [x, x, y] vs [x, y, y]: common = 1 + 1 = 2, P = R = 2/3
    assert token_f1("x x y", ["x y y"]) == pytest.approx(2 / 3)
    assert token_f1("nothing here", ["other words"]) == 0.0
    assert token_f1("", ["answer"]) == 0.0
    # max over gold answers
    assert token_f1("blue whale", ["whale shark", "blue whale"]) == 1.0
    assert token_f1("blue whale", ["whale shark", "blue"]) == pytest.approx(2 / 3)


def test_score_predictions_percent_and_errors():
    s = score_predictions(["Paris", "Rome city", "x"], [["Paris"], ["Rome"], ["y"]])
    assert s["em"] == pytest.approx(100 / 3)
    assert s["em_prefix"] == pytest.approx(200 / 3)
    assert s["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0) / 3)
    assert s["num_questions"] == 3
    with pytest.raises(ValueError, match="predictions"):
        score_predictions(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="gold"):
        exact_match("a", [])
