"""Documents with question/answer pairs: an embedded synthetic generator and loaders for real files.

A :class:`Document` is one text plus the questions it answers. The benchmark streams documents to the
base language model (inner loop: fine-tune on the text) and then asks the questions (outer loss /
evaluation).

* :func:`generate_documents` — seeded synthetic fact documents about fictional people and companies
  (names, dates, places, occupations, products). The facts are random, so a model can only answer a
  question after reading the document.
* :func:`make_synthetic_splits` — disjoint QA-tune / meta-train / meta-validation / test streams and a
  pool of unrelated locality texts.
* :func:`load_squad_json` — SQuAD v1.1-style JSON; :func:`camels_squad_splits` cuts SQuAD v1.1 train into
  the QA-tune / meta-train / meta-validation ranges used by CaMeLS.
* :func:`load_streamingqa_jsonl` — StreamingQA-style JSON Lines records (question, answers and either
  the document text inline or an ``evidence_id`` into a separate document file).

Missing files raise :class:`DataFileMissingError`, which names the file, the expected format and the
environment variable :data:`DATA_ENV_VAR`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path
from typing import Iterable, Sequence

__all__ = [
    "DATA_ENV_VAR",
    "QAPair",
    "Document",
    "Splits",
    "DataFileMissingError",
    "generate_documents",
    "make_synthetic_splits",
    "load_squad_json",
    "squad_question_records",
    "camels_squad_splits",
    "load_streamingqa_jsonl",
    "resolve_data_file",
]

DATA_ENV_VAR = "FG2U_LM_DATA"
"""Environment variable naming the folder with real LM data files (SQuAD / StreamingQA)."""


@dataclasses.dataclass(frozen=True)
class QAPair:
    """A question and its accepted answers (the first one is the training target)."""

    question: str
    answers: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.question.strip():
            raise ValueError("QAPair.question is empty")
        if not self.answers or not all(isinstance(a, str) and a.strip() for a in self.answers):
            raise ValueError(f"QAPair for {self.question!r} needs at least one non-empty answer, got {self.answers!r}")

    @property
    def answer(self) -> str:
        return self.answers[0]


@dataclasses.dataclass(frozen=True)
class Document:
    """One text of the stream and the questions about it."""

    doc_id: str
    text: str
    qa: tuple[QAPair, ...]


@dataclasses.dataclass(frozen=True)
class Splits:
    """The streams of one benchmark instance.

    Attributes:
      qa_tune: documents whose QA pairs (and texts) pre-train the base model on the QA format.
      meta_train: documents of the meta-training stream.
      meta_val: documents for validation of the weight model.
      test: unseen documents for the final evaluation.
      locality: unrelated texts for the KL locality term (never asked about).
      name: data set label for result records.
    """

    qa_tune: tuple[Document, ...]
    meta_train: tuple[Document, ...]
    meta_val: tuple[Document, ...]
    test: tuple[Document, ...]
    locality: tuple[str, ...]
    name: str

    def all_texts(self) -> list[str]:
        """Every text and QA string (to build a tokenizer)."""
        out: list[str] = list(self.locality)
        for docs in (self.qa_tune, self.meta_train, self.meta_val, self.test):
            for d in docs:
                out.append(d.text)
                out.extend(q.question + " " + " ".join(q.answers) for q in d.qa)
        return out


class DataFileMissingError(FileNotFoundError):
    """A real data file the user asked for is not there; the message says what to put where."""


# --------------------------------------------------------------------------------------------------
# Synthetic fact documents
# --------------------------------------------------------------------------------------------------

_FIRST = (
    "Amara Bastian Celine Dario Elena Farid Greta Hugo Ines Jonas Kira Lorenzo Maren Nikhil Olga Pavel "
    "Quinn Rosa Stefan Talia Umar Vera Wendel Xenia Yusuf Zora Anika Bruno Clara Desmond Edith Felix "
    "Gideon Hanna Ivo Jasmin Konrad Lena Milo Nadia Oskar Petra Rafael Selma Tobias Ursula Viktor Wilma"
).split()
_LAST = (
    "Abernethy Brandt Castellano Dunmore Eklund Falkner Gallardo Halloran Ivanova Jessup Kowalczyk "
    "Lindqvist Marchetti Nakamura Okafor Pemberton Quintero Rasmussen Santoro Thackeray Underhill "
    "Valdivia Whitcombe Yamamoto Zielinski Achterberg Beaumont Corrigan Delacroix Engstrom Fairweather "
    "Grimaldi Hargreaves Iversen Jankowski Kristensen Lockhart Moreau Norberg Oyelaran"
).split()
_CITIES = (
    "Lisbon Tromso Valparaiso Kraków Mombasa Hobart Quebec Tbilisi Cusco Nagoya Bergen Porto Windhoek "
    "Salzburg Dunedin Tallinn Marseille Cordoba Ljubljana Halifax Bilbao Tartu Gdansk Lyon Antwerp "
    "Aarhus Zagreb Seville Graz Turku"
).split()
_OCCUPATIONS = (
    "architect", "cartographer", "violinist", "marine biologist", "translator", "glassblower",
    "astronomer", "pastry chef", "bookbinder", "geologist", "journalist", "clockmaker", "botanist",
    "civil engineer", "photographer", "veterinarian", "sculptor", "economist", "pilot", "librarian",
)
_INSTRUMENTS = ("cello", "oboe", "harp", "accordion", "trumpet", "banjo", "piano", "flute", "drums", "sitar")
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_SYLLABLES = "vel or ex tan dri qua mor lin zet pra kor ven sil tor bex nar ulo fen gra dox".split()
_SUFFIX = ("Industries", "Systems", "Labs", "Foods", "Motors", "Textiles", "Robotics", "Pharma", "Logistics")
_PRODUCTS = (
    "solar panels", "bicycle frames", "water filters", "hearing aids", "kitchen robots", "wool blankets",
    "electric ferries", "weather balloons", "garden drones", "ceramic knives", "vaccine coolers",
    "wind turbines", "reading lamps", "sailing boats", "coffee grinders",
)
_FILLER = (
    "The weather that season was unusually mild.",
    "Local newspapers covered the story for several weeks.",
    "Few people outside the region had heard of it at the time.",
    "Historians still debate the details of that period.",
    "Records from those years are incomplete.",
    "The town later built a small museum about its past.",
)


def _date(rng: random.Random, lo: int, hi: int) -> tuple[str, int]:
    year = rng.randint(lo, hi)
    return f"{rng.randint(1, 28)} {rng.choice(_MONTHS)} {year}", year


def _company_name(rng: random.Random) -> str:
    stem = "".join(rng.sample(_SYLLABLES, 2)).capitalize()
    return f"{stem} {rng.choice(_SUFFIX)}"


def _person_document(rng: random.Random, name: str, doc_id: str) -> Document:
    born, year = _date(rng, 1900, 1990)
    city = rng.choice(_CITIES)
    job = rng.choice(_OCCUPATIONS)
    employer = _company_name(rng)
    join_year = year + rng.randint(20, 35)
    instrument = rng.choice(_INSTRUMENTS)
    home = rng.choice([c for c in _CITIES if c != city])
    first = name.split()[0]
    sentences = [
        rng.choice((f"{name} was born on {born} in {city}.", f"Born in {city} on {born}, {name} grew up there.")),
        rng.choice((f"{first} worked as a {job} for most of their life.", f"By profession, {first} was a {job}.")),
        f"In {join_year}, {first} joined {employer}.",
        rng.choice((f"{first} later moved to {home}.", f"After retiring, {first} settled in {home}.")),
        f"In their spare time {first} played the {instrument}.",
    ]
    order = sentences[:1] + rng.sample(sentences[1:], len(sentences) - 1)
    if rng.random() < 0.5:
        order.insert(rng.randint(1, len(order)), rng.choice(_FILLER))
    qa = (
        QAPair(f"When was {name} born?", (born,)),
        QAPair(f"In which city was {name} born?", (city,)),
        QAPair(f"What was the profession of {name}?", (job, f"a {job}")),
        QAPair(f"Which company did {name} join in {join_year}?", (employer,)),
        QAPair(f"Where did {name} move to later?", (home,)),
        QAPair(f"Which instrument did {name} play?", (instrument, f"the {instrument}")),
    )
    return Document(doc_id=doc_id, text=" ".join(order), qa=qa)


def _company_document(rng: random.Random, name: str, founder: str, doc_id: str) -> Document:
    founded, year = _date(rng, 1850, 2015)
    city = rng.choice(_CITIES)
    product = rng.choice(_PRODUCTS)
    staff = rng.choice((40, 120, 350, 800, 1500, 2300, 5000, 12000))
    sentences = [
        f"{name} was founded by {founder} on {founded}.",
        rng.choice((f"The company is based in {city}.", f"Its headquarters are in {city}.")),
        rng.choice((f"{name} is best known for its {product}.", f"The firm mainly makes {product}.")),
        f"Today it employs about {staff} people.",
    ]
    order = sentences[:1] + rng.sample(sentences[1:], len(sentences) - 1)
    if rng.random() < 0.5:
        order.insert(rng.randint(1, len(order)), rng.choice(_FILLER))
    qa = (
        QAPair(f"Who founded {name}?", (founder,)),
        QAPair(f"When was {name} founded?", (founded, str(year))),
        QAPair(f"Where is {name} based?", (city,)),
        QAPair(f"What is {name} known for?", (product,)),
        QAPair(f"How many people does {name} employ?", (str(staff), f"about {staff}")),
    )
    return Document(doc_id=doc_id, text=" ".join(order), qa=qa)


def generate_documents(
    num_documents: int, seed: int, *, questions_per_document: int | None = None, prefix: str = "syn"
) -> list[Document]:
    """``num_documents`` synthetic fact documents (people and companies), reproducible from ``seed``.

    Every document is about a distinct fictional entity (unique names within one call), so its facts
    cannot be known before reading it. ``questions_per_document`` keeps a random subset of the
    questions (all of them when ``None``).
    """
    if num_documents < 0:
        raise ValueError(f"num_documents must be >= 0, got {num_documents}")
    max_people = len(_FIRST) * len(_LAST)
    if num_documents > max_people:
        raise ValueError(f"at most {max_people} distinct synthetic documents can be generated, asked for {num_documents}")
    rng = random.Random(seed)
    people = [f"{f} {l}" for f in _FIRST for l in _LAST]
    rng.shuffle(people)
    companies: set[str] = set()
    docs = []
    for i in range(num_documents):
        doc_id = f"{prefix}-{seed}-{i}"
        if rng.random() < 0.6:
            doc = _person_document(rng, people[i], doc_id)
        else:
            name = _company_name(rng)
            while name in companies:
                name = _company_name(rng)
            companies.add(name)
            doc = _company_document(rng, name, people[i], doc_id)
        if questions_per_document is not None and questions_per_document < len(doc.qa):
            doc = dataclasses.replace(doc, qa=tuple(rng.sample(list(doc.qa), questions_per_document)))
        docs.append(doc)
    return docs


def make_synthetic_splits(
    *,
    num_qa_tune: int,
    num_meta_train: int,
    num_meta_val: int,
    num_test: int,
    num_locality: int,
    seed: int = 0,
    questions_per_document: int | None = None,
) -> Splits:
    """Disjoint synthetic streams (one generator call, so no entity appears in two splits)."""
    sizes = (num_qa_tune, num_meta_train, num_meta_val, num_test, num_locality)
    docs = generate_documents(sum(sizes), seed, questions_per_document=questions_per_document)
    cuts, start = [], 0
    for n in sizes:
        cuts.append(tuple(docs[start:start + n]))
        start += n
    locality = tuple(d.text for d in cuts[4])
    return Splits(qa_tune=cuts[0], meta_train=cuts[1], meta_val=cuts[2], test=cuts[3], locality=locality,
                  name="synthetic-facts")


# --------------------------------------------------------------------------------------------------
# Real data files
# --------------------------------------------------------------------------------------------------

def resolve_data_file(path: str | os.PathLike | None, default_name: str, what: str) -> Path:
    """The file ``path``, or ``$FG2U_LM_DATA/default_name`` when ``path`` is None; a clear error if absent."""
    if path is None:
        folder = os.environ.get(DATA_ENV_VAR)
        if not folder:
            raise DataFileMissingError(
                f"no {what} file given: pass its path (e.g. --data-file) or set {DATA_ENV_VAR} to the folder "
                f"holding {default_name!r}. Nothing can be downloaded here; copy the file in by hand."
            )
        path = Path(folder) / default_name
    path = Path(path)
    if not path.is_file():
        raise DataFileMissingError(
            f"{what} file not found: {path}. Put the file there (expected name {default_name!r}) or pass "
            f"its path explicitly / set {DATA_ENV_VAR} to its folder. Nothing can be downloaded here."
        )
    return path


def squad_question_records(path: str | os.PathLike) -> list[tuple[str, QAPair]]:
    """The questions of a SQuAD v1.1-style JSON file in file order, as ``(context, QAPair)``.

    Format: ``{"data": [{"title": ..., "paragraphs": [{"context": str, "qas": [{"question": str,
    "answers": [{"text": str, "answer_start": int}, ...]}]}]}]}``. Questions without answers
    (SQuAD 2.0 impossible questions) are skipped.
    """
    path = resolve_data_file(path, "train-v1.1.json", "SQuAD JSON")
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); expected SQuAD v1.1 format") from error
    if not isinstance(blob, dict) or not isinstance(blob.get("data"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'data' list (SQuAD v1.1 format)")
    out = []
    for article in blob["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise ValueError(f"{path}: a paragraph has no 'context' string")
            for qa in paragraph.get("qas", []):
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a.get("text", "").strip()))
                if answers:
                    out.append((context, QAPair(qa["question"], answers)))
    return out


def _group_by_context(records: Iterable[tuple[str, QAPair]], prefix: str) -> list[Document]:
    order: dict[str, list[QAPair]] = {}
    for context, qa in records:
        order.setdefault(context, []).append(qa)
    return [Document(doc_id=f"{prefix}-{i}", text=c, qa=tuple(qs)) for i, (c, qs) in enumerate(order.items())]


def load_squad_json(path: str | os.PathLike | None) -> list[Document]:
    """SQuAD-style JSON grouped into documents (one per context paragraph, in file order)."""
    return _group_by_context(squad_question_records(path), "squad")


CAMELS_SQUAD_RANGES = {"qa_tune": (0, 40006), "qa_val": (40006, 42118), "meta_train": (42118, 82011),
                       "meta_val": (82011, 87599)}
"""Question-index ranges into SQuAD v1.1 train used by CaMeLS (test = the SQuAD validation file)."""


def camels_squad_splits(
    train_path: str | os.PathLike | None,
    test_path: str | os.PathLike | None,
    *,
    num_locality: int = 256,
    ranges: dict[str, tuple[int, int]] | None = None,
) -> Splits:
    """SQuAD-Seq splits as in CaMeLS: question ranges of the train file, test = the validation file.

    Locality texts are the contexts of the QA-validation range (never streamed, never asked about).
    ``ranges`` overrides :data:`CAMELS_SQUAD_RANGES` (small files in tests).
    """
    ranges = dict(CAMELS_SQUAD_RANGES if ranges is None else ranges)
    records = squad_question_records(train_path)
    if test_path is None and os.environ.get(DATA_ENV_VAR):
        test_path = Path(os.environ[DATA_ENV_VAR]) / "dev-v1.1.json"
    test = load_squad_json(resolve_data_file(test_path, "dev-v1.1.json", "SQuAD validation JSON"))
    part = {k: _group_by_context(records[a:b], f"squad-{k}") for k, (a, b) in ranges.items()}
    locality = tuple(d.text for d in part.get("qa_val", []))[:num_locality]
    return Splits(qa_tune=tuple(part["qa_tune"]), meta_train=tuple(part["meta_train"]),
                  meta_val=tuple(part["meta_val"]), test=tuple(test), locality=locality, name="squad-seq")


def _answers_of(record: dict, where: str) -> tuple[str, ...]:
    raw = record.get("answers", record.get("answer"))
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: expected 'answers' (a list of strings or a string)")
    answers = []
    for a in raw:
        text = a.get("text") if isinstance(a, dict) else a
        if isinstance(text, str) and text.strip():
            answers.append(text)
    for extra in record.get("answers_additional", []) or []:
        if isinstance(extra, str) and extra.strip():
            answers.append(extra)
    if not answers:
        raise ValueError(f"{where}: no non-empty answer")
    return tuple(dict.fromkeys(answers))


def load_streamingqa_jsonl(
    questions_path: str | os.PathLike | None, documents_path: str | os.PathLike | None = None
) -> list[Document]:
    """StreamingQA-style JSON Lines: one question per line, grouped into documents in file order.

    Each line holds ``"question"``, ``"answers"`` (list of strings, or a string; optional
    ``"answers_additional"``) and the evidence either inline (``"text"``, ``"document"`` or
    ``"context"``) or as ``"evidence_id"`` pointing into ``documents_path``, a JSON Lines file of
    ``{"id"|"evidence_id"|"doc_id": str, "text": str}``.
    """
    qpath = resolve_data_file(questions_path, "streamingqa_questions.jsonl", "StreamingQA questions JSONL")
    docs: dict[str, str] = {}
    if documents_path is not None:
        dpath = resolve_data_file(documents_path, "streamingqa_documents.jsonl", "StreamingQA documents JSONL")
        for n, line in enumerate(dpath.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            rec = json.loads(line)
            key = next((rec[k] for k in ("id", "evidence_id", "doc_id") if k in rec), None)
            if key is None or not isinstance(rec.get("text"), str):
                raise ValueError(f"{dpath}:{n}: a document record needs 'id' (or 'evidence_id'/'doc_id') and 'text'")
            docs[str(key)] = rec["text"]
    grouped: dict[str, tuple[str, list[QAPair]]] = {}
    for n, line in enumerate(qpath.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{qpath}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error})") from error
        text = next((rec[k] for k in ("text", "document", "context") if isinstance(rec.get(k), str)), None)
        key = str(rec.get("evidence_id", rec.get("doc_id", "")))
        if text is None:
            if not key:
                raise ValueError(f"{where}: needs the document text ('text'/'document'/'context') or an 'evidence_id'")
            if key not in docs:
                raise ValueError(f"{where}: evidence_id {key!r} not found; pass the documents JSONL holding it")
            text = docs[key]
        key = key or text
        if not isinstance(rec.get("question"), str):
            raise ValueError(f"{where}: missing 'question' string")
        grouped.setdefault(key, (text, []))[1].append(QAPair(rec["question"], _answers_of(rec, where)))
    return [Document(doc_id=f"sqa-{k}", text=t, qa=tuple(q)) for k, (t, q) in grouped.items()]


def split_documents(docs: Sequence[Document], fractions: Sequence[float], seed: int) -> list[tuple[Document, ...]]:
    """Shuffled (seeded) disjoint parts of ``docs`` with the given fractions (summing to at most 1)."""
    if sum(fractions) > 1 + 1e-9 or any(f < 0 for f in fractions):
        raise ValueError(f"fractions must be >= 0 and sum to <= 1, got {list(fractions)}")
    docs = list(docs)
    random.Random(seed).shuffle(docs)
    out, start = [], 0
    for f in fractions:
        n = int(round(f * len(docs)))
        out.append(tuple(docs[start:start + n]))
        start += n
    return out
