"""Synthetic documents, real-data loaders on small files, missing-file errors and the tokenizer."""

import json

import pytest

from fg2u_bench_lm import data
from fg2u_bench_lm.tokenizer import encode_qa, encode_texts, qa_prompt, train_tokenizer


def test_generator_is_seeded_and_answers_come_from_the_text():
    a = data.generate_documents(30, seed=3)
    b = data.generate_documents(30, seed=3)
    c = data.generate_documents(30, seed=4)
    assert a == b
    assert [d.text for d in a] != [d.text for d in c]
    for doc in a:
        assert len(doc.qa) >= 5
        for qa in doc.qa:
            assert qa.answers[0] in doc.text, (qa, doc.text)


def test_synthetic_splits_are_disjoint():
    s = data.make_synthetic_splits(
        num_qa_tune=20, num_meta_train=10, num_meta_val=5, num_test=5, num_locality=4, seed=0
    )
    assert (len(s.qa_tune), len(s.meta_train), len(s.meta_val), len(s.test), len(s.locality)) == (20, 10, 5, 5, 4)
    ids = [d.doc_id for part in (s.qa_tune, s.meta_train, s.meta_val, s.test) for d in part]
    assert len(ids) == len(set(ids))
    # each document is about a distinct entity: no test question appears in another split
    test_q = {q.question for d in s.test for q in d.qa}
    other_q = {q.question for part in (s.qa_tune, s.meta_train, s.meta_val) for d in part for q in d.qa}
    assert not test_q & other_q
    s2 = data.make_synthetic_splits(
        num_qa_tune=2, num_meta_train=2, num_meta_val=1, num_test=1, num_locality=1, seed=0, questions_per_document=2
    )
    assert all(len(d.qa) == 2 for d in s2.meta_train)


def _squad_blob():
    return {
        "version": "1.1",
        "data": [
            {
                "title": "A",
                "paragraphs": [
                    {
                        "context": "Alpha is a city. It has a river.",
                        "qas": [
                            {
                                "id": "1",
                                "question": "What is Alpha?",
                                "answers": [
                                    {"text": "a city", "answer_start": 9},
                                    {"text": "a city", "answer_start": 9},
                                    {"text": "city", "answer_start": 11},
                                ],
                            },
                            {
                                "id": "2",
                                "question": "What does it have?",
                                "answers": [{"text": "a river", "answer_start": 24}],
                            },
                        ],
                    },
                    {
                        "context": "Beta was founded in 1901.",
                        "qas": [
                            {
                                "id": "3",
                                "question": "When was Beta founded?",
                                "answers": [{"text": "1901", "answer_start": 20}],
                            },
                            {"id": "4", "question": "Impossible?", "answers": []},
                        ],
                    },
                ],
            },
            {
                "title": "B",
                "paragraphs": [
                    {
                        "context": "Gamma plays chess.",
                        "qas": [
                            {
                                "id": "5",
                                "question": "What does Gamma play?",
                                "answers": [{"text": "chess", "answer_start": 12}],
                            }
                        ],
                    }
                ],
            },
        ],
    }


def test_squad_loader_groups_by_context(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(_squad_blob()))
    docs = data.load_squad_json(path)
    assert [d.text for d in docs] == [
        "Alpha is a city. It has a river.",
        "Beta was founded in 1901.",
        "Gamma plays chess.",
    ]
    assert docs[0].qa[0].answers == ("a city", "city")  # duplicates removed, order kept
    assert [len(d.qa) for d in docs] == [2, 1, 1]  # unanswerable question skipped
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps(_squad_blob()))
    splits = data.camels_squad_splits(
        path, dev, ranges={"qa_tune": (0, 2), "qa_val": (2, 3), "meta_train": (3, 4), "meta_val": (4, 4)}
    )
    assert [d.text for d in splits.qa_tune] == ["Alpha is a city. It has a river."]
    assert splits.locality == ("Beta was founded in 1901.",)
    assert [d.text for d in splits.meta_train] == ["Gamma plays chess."]
    assert len(splits.test) == 3 and splits.name == "squad-seq"


def test_squad_loader_rejects_bad_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"no_data": 1}')
    with pytest.raises(ValueError, match="'data' list"):
        data.load_squad_json(path)


def test_streamingqa_loader_inline_and_by_evidence_id(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"question": "Who won?", "answers": ["Delta"], "evidence_id": "e1"},
                {"question": "When?", "answers": ["Monday"], "answers_additional": ["on Monday"], "evidence_id": "e1"},
                {"question": "Where?", "answers": "Oslo", "text": "The match was in Oslo."},
            ]
        )
        + "\n"
    )
    d = tmp_path / "docs.jsonl"
    d.write_text(json.dumps({"id": "e1", "text": "Delta won on Monday."}) + "\n")
    docs = data.load_streamingqa_jsonl(q, d)
    assert len(docs) == 2
    assert docs[0].text == "Delta won on Monday." and [x.question for x in docs[0].qa] == ["Who won?", "When?"]
    assert docs[0].qa[1].answers == ("Monday", "on Monday")
    assert docs[1].qa[0].answers == ("Oslo",)
    with pytest.raises(ValueError, match="evidence_id 'e1' not found"):
        data.load_streamingqa_jsonl(q)


def test_missing_files_say_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    with pytest.raises(data.DataFileMissingError, match=data.DATA_ENV_VAR):
        data.load_squad_json(None)
    with pytest.raises(data.DataFileMissingError, match="nope.json"):
        data.load_squad_json(tmp_path / "nope.json")
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path))
    with pytest.raises(data.DataFileMissingError, match="train-v1.1.json"):
        data.load_squad_json(None)
    with pytest.raises(data.DataFileMissingError, match="streamingqa_questions.jsonl"):
        data.load_streamingqa_jsonl(None)
    assert issubclass(data.DataFileMissingError, FileNotFoundError)


def test_tokenizer_round_trip_and_answer_mask():
    docs = data.generate_documents(40, seed=1)
    texts = [d.text for d in docs] + [q.question + " " + q.answer for d in docs for q in d.qa]
    tok = train_tokenizer(texts, vocab_size=400)
    for d in docs[:5]:
        ids = tok(d.text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == d.text  # byte-level BPE decodes exactly
    pairs = [docs[0].qa[0], docs[1].qa[2]]
    batch = encode_qa(tok, pairs, max_length=48)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["answer_mask"].shape
    for i, qa in enumerate(pairs):
        ids = batch["input_ids"][i]
        answer_ids = ids[batch["answer_mask"][i].bool()].tolist()
        assert answer_ids[-1] == tok.eos_token_id
        assert tok.decode(answer_ids[:-1]) == " " + qa.answer
        prompt_ids = ids[(batch["attention_mask"][i] - batch["answer_mask"][i]).bool()].tolist()
        assert tok.decode(prompt_ids) == qa_prompt(qa.question)
        assert (batch["answer_mask"][i] <= batch["attention_mask"][i]).all()
    enc = encode_texts(tok, ["a b", "a b c d e"], max_length=64, pad_to=20)
    assert enc["input_ids"].shape == (2, 20)
    assert enc["attention_mask"][0].sum() < enc["attention_mask"][1].sum()
    assert (enc["input_ids"][enc["attention_mask"] == 0] == tok.pad_token_id).all()
    with pytest.raises(ValueError, match="pad_to"):
        encode_texts(tok, ["a b c d e f g"], max_length=64, pad_to=2)


def test_sparse_stream_facts_are_a_small_random_part_of_the_text():
    a = data.generate_sparse_documents(40, seed=5)
    assert a == data.generate_sparse_documents(40, seed=5)
    assert [d.text for d in a] != [d.text for d in data.generate_sparse_documents(40, seed=6)]
    fact_chars = total_chars = 0
    first_positions = set()
    for d in a:
        assert len(d.qa) == len(d.fact_spans) == len(d.answer_spans) == 2
        for qa, (fs, fe), (s, e) in zip(d.qa, d.fact_spans, d.answer_spans):
            assert fs <= s < e <= fe
            assert d.text[s:e] == qa.answers[0]  # the answer span is the answer, inside its fact sentence
            assert d.text[fs:fe].endswith(".")
        fact_chars += sum(e - s for s, e in d.fact_spans)
        total_chars += len(d.text)
        first_positions.add(d.fact_spans[0][0] == 0)
    assert 0.08 <= fact_chars / total_chars <= 0.22  # facts are 10–20 % of the text
    assert first_positions == {True, False}  # facts at random positions, not always first
    s = data.make_synthetic_splits(
        num_qa_tune=5, num_meta_train=5, num_meta_val=2, num_test=3, num_locality=2, seed=0, stream="sparse"
    )
    assert s.name == "synthetic-sparse-facts" and all(d.answer_spans for d in s.test)
    with pytest.raises(ValueError, match="stream"):
        data.make_synthetic_splits(
            num_qa_tune=1, num_meta_train=1, num_meta_val=1, num_test=1, num_locality=1, stream="nope"
        )


def test_span_token_mask_marks_exactly_the_answer_tokens():
    from fg2u_bench_lm.tokenizer import encode_documents, span_token_mask

    docs = data.generate_sparse_documents(30, seed=2)
    tok = train_tokenizer([d.text for d in docs], vocab_size=400)
    mask = span_token_mask(tok, docs[:4], 1024, scope="answer")
    ids = encode_documents(tok, docs[:4], 1024)["input_ids"]
    for i, d in enumerate(docs[:4]):
        marked = tok.decode(ids[i][mask[i].bool()].tolist())
        # marked tokens cover the answers (token boundaries may add a leading space or a neighbour piece)
        for qa in d.qa:
            assert qa.answers[0] in marked
        assert mask[i].sum() < 0.3 * (ids[i] != tok.pad_token_id).sum()
    fact = span_token_mask(tok, docs[:4], 1024, scope="fact")
    assert ((fact - mask) >= 0).all() and fact.sum() > mask.sum()
    with pytest.raises(ValueError, match="scope"):
        span_token_mask(tok, docs[:1], 64, scope="bad")


def _dev_blob(num_articles=12):
    arts = []
    for a in range(num_articles):
        long = " ".join(f"Sentence {k} of article {a}." for k in range(60))  # > max_chars
        arts.append(
            {
                "title": f"T{a}",
                "paragraphs": [
                    {
                        "context": f"Article {a} is about topic {a}. It has a river called R{a}.",
                        "qas": [
                            {
                                "id": f"{a}-1",
                                "question": f"What is article {a} about?",
                                "answers": [{"text": f"topic {a}", "answer_start": len(f"Article {a} is about ")}],
                            }
                        ],
                    },
                    {
                        "context": long,
                        "qas": [
                            {
                                "id": f"{a}-2",
                                "question": "late?",
                                "answers": [{"text": "Sentence 59", "answer_start": long.index("Sentence 59")}],
                            },
                            {
                                "id": f"{a}-3",
                                "question": "early?",
                                "answers": [{"text": "Sentence 1", "answer_start": long.index("Sentence 1 ")}],
                            },
                        ],
                    },
                ],
            }
        )
    return {"version": "1.1", "data": arts}


def test_squad_dev_article_split_has_no_article_in_two_splits(tmp_path, monkeypatch):
    path = tmp_path / "dev-v1.1.json"
    path.write_text(json.dumps(_dev_blob()))
    s = data.squad_dev_article_splits(path, fractions=(0.4, 0.3, 0.1, 0.2), num_locality_articles=1, max_chars=200)
    article = lambda d: d.doc_id.split("-")[2]
    parts = [{article(d) for d in part} for part in (s.qa_tune, s.meta_train, s.meta_val, s.test)]
    assert all(parts)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not parts[i] & parts[j]
    assert sum(len(p) for p in parts) == 11  # 12 articles, one kept for locality texts
    assert s.name == "squad-v1.1-dev-article-split" and len(s.locality) == 2
    for d in s.test:
        assert len(d.text) <= 200
        for qa in d.qa:
            assert qa.question != "late?"  # its answer was cut off with the text
        for a, b in d.answer_spans:
            assert d.text[a:b] in {x for qa in d.qa for x in qa.answers}
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    with pytest.raises(data.DataFileMissingError, match="dev-v1.1.json"):
        data.squad_dev_article_splits(None)
    with pytest.raises(data.DataFileMissingError, match="missing.json"):
        data.squad_dev_article_splits(tmp_path / "missing.json")
