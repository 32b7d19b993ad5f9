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
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "DATA_ENV_VAR",
    "QAPair",
    "Document",
    "Splits",
    "DataFileMissingError",
    "generate_documents",
    "generate_sparse_documents",
    "make_synthetic_splits",
    "load_squad_json",
    "squad_question_records",
    "camels_squad_splits",
    "squad_dev_article_splits",
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
    fact_spans: tuple[tuple[int, int], ...] = ()
    """Character spans ``[start, end)`` of ``text`` that carry the answers to ``qa`` (the fact sentences);
    empty when unknown (real data). Used for the oracle weighting and the answer-bearing token fraction."""
    answer_spans: tuple[tuple[int, int], ...] = ()
    """Character spans of the answer strings themselves inside the fact sentences (empty when unknown)."""


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
    "architect",
    "cartographer",
    "violinist",
    "marine biologist",
    "translator",
    "glassblower",
    "astronomer",
    "pastry chef",
    "bookbinder",
    "geologist",
    "journalist",
    "clockmaker",
    "botanist",
    "civil engineer",
    "photographer",
    "veterinarian",
    "sculptor",
    "economist",
    "pilot",
    "librarian",
)
_INSTRUMENTS = ("cello", "oboe", "harp", "accordion", "trumpet", "banjo", "piano", "flute", "drums", "sitar")
_MONTHS = ("January February March April May June July August September October November December").split()
_SYLLABLES = "vel or ex tan dri qua mor lin zet pra kor ven sil tor bex nar ulo fen gra dox".split()
_SUFFIX = ("Industries", "Systems", "Labs", "Foods", "Motors", "Textiles", "Robotics", "Pharma", "Logistics")
_PRODUCTS = (
    "solar panels",
    "bicycle frames",
    "water filters",
    "hearing aids",
    "kitchen robots",
    "wool blankets",
    "electric ferries",
    "weather balloons",
    "garden drones",
    "ceramic knives",
    "vaccine coolers",
    "wind turbines",
    "reading lamps",
    "sailing boats",
    "coffee grinders",
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
        raise ValueError(
            f"at most {max_people} distinct synthetic documents can be generated, asked for {num_documents}"
        )
    rng = random.Random(seed)
    people = [f"{first} {last}" for first in _FIRST for last in _LAST]
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


# --------------------------------------------------------------------------------------------------
# Sparse-facts stream: a few answer-bearing fact sentences inside realistic distractor text
# --------------------------------------------------------------------------------------------------

_BOILERPLATE = (
    "This entry is part of the regional archive series.",
    "Please note that opening hours may change without notice.",
    "The text below was transcribed from the original typed notes.",
    "Readers are welcome to send corrections to the editorial office.",
    "All photographs in this collection are reproduced with permission.",
    "This page is maintained by the volunteer history society.",
    "Some names have been shortened for readability.",
    "Comments on this page are moderated before they appear.",
)
_STREETS = (
    "Mill Lane",
    "Harbour Road",
    "Station Street",
    "Chapel Row",
    "Orchard Way",
    "Bridge Street",
    "Kings Avenue",
    "Market Square",
    "Linden Walk",
    "Quarry Hill",
)


def _distractor_sentence(rng: random.Random, people: Sequence[str]) -> str:
    """One sentence with names, numbers or places that no question asks about."""
    other = rng.choice(people)
    n, m = rng.randint(12, 9800), rng.randint(2, 400)
    city, city2 = rng.sample(_CITIES, 2)
    year = rng.randint(1850, 2020)
    month = rng.choice(_MONTHS)
    return rng.choice(
        (
            f"Archive record {n} was catalogued by {other} in {month} {year}.",
            f"The regional office reported {n} visitors and {m} phone calls that month.",
            f"A train from {city} to {city2} left at {rng.randint(5, 11)}:{rng.randint(10, 59)} every morning.",
            f"{other}, a neighbour, kept {m} chickens behind the house on {rng.choice(_STREETS)}.",
            f"Ticket prices in {city} rose to {m} crowns in {year}.",
            f"See also the list of notable residents of {city}.",
            f"The local football club finished with {m} points in {year}.",
            f"A census taken in {year} counted {n} households in the district.",
            f"The library on {rng.choice(_STREETS)} lends about {n} books each year.",
            f"{other} wrote a short review of the town museum in {year}.",
            f"The bus to {city} costs {m} crowns and takes {rng.randint(2, 9)} hours.",
            f"On {rng.randint(1, 28)} {month} {year} the river near {city} froze over.",
            f"{other} from {city} donated {m} old maps to the archive.",
            f"The museum shop sells {rng.choice(_PRODUCTS)} and postcards.",
        )
    )


def _sparse_facts(rng: random.Random, name: str, kind: str, company: str) -> list[tuple[str, str, QAPair]]:
    """Candidate (sentence, answer, question) triples about one entity; the answer occurs in the sentence."""
    if kind == "person":
        born, _ = _date(rng, 1900, 1990)
        city = rng.choice(_CITIES)
        job = rng.choice(_OCCUPATIONS)
        instrument = rng.choice(_INSTRUMENTS)
        home = rng.choice([c for c in _CITIES if c != city])
        return [
            (f"{name} was born in {city}.", city, QAPair(f"In which city was {name} born?", (city,))),
            (f"{name} was born on {born}.", born, QAPair(f"When was {name} born?", (born,))),
            (f"{name} worked as a {job}.", job, QAPair(f"What was the profession of {name}?", (job, f"a {job}"))),
            (f"{name} joined {company}.", company, QAPair(f"Which company did {name} join?", (company,))),
            (f"{name} later moved to {home}.", home, QAPair(f"Where did {name} move to later?", (home,))),
            (
                f"{name} played the {instrument}.",
                instrument,
                QAPair(f"Which instrument did {name} play?", (instrument, f"the {instrument}")),
            ),
        ]
    founded, year = _date(rng, 1850, 2015)
    city = rng.choice(_CITIES)
    product = rng.choice(_PRODUCTS)
    staff = rng.choice((40, 120, 350, 800, 1500, 2300, 5000, 12000))
    return [
        (f"{company} was founded by {name}.", name, QAPair(f"Who founded {company}?", (name,))),
        (f"{company} was founded on {founded}.", founded, QAPair(f"When was {company} founded?", (founded, str(year)))),
        (f"{company} is based in {city}.", city, QAPair(f"Where is {company} based?", (city,))),
        (f"{company} is known for its {product}.", product, QAPair(f"What is {company} known for?", (product,))),
        (
            f"{company} employs about {staff} people.",
            str(staff),
            QAPair(f"How many people does {company} employ?", (str(staff), f"about {staff}")),
        ),
    ]


def generate_sparse_documents(
    num_documents: int,
    seed: int,
    *,
    facts_per_document: int = 2,
    distractor_sentences: tuple[int, int] = (6, 8),
    prefix: str = "sparse",
) -> list[Document]:
    """Seeded documents where the answer-bearing facts are a small part of the text.

    Each document holds ``facts_per_document`` short fact sentences about one fictional entity (a person
    or a company; the questions ask exactly these facts) at random positions among
    ``distractor_sentences`` (min, max) sentences of realistic distractor text: boilerplate, and
    sentences full of other names, dates, numbers and places that no question asks about. With the
    defaults the fact sentences are about 10–20 % of the tokens. ``Document.fact_spans`` /
    ``answer_spans`` give the character spans of the fact sentences / answers (the oracle weighting).
    Entities are distinct within one call, so the facts can only be known by reading the document.
    """
    if num_documents < 0:
        raise ValueError(f"num_documents must be >= 0, got {num_documents}")
    lo, hi = distractor_sentences
    if not 0 <= lo <= hi:
        raise ValueError(f"distractor_sentences must be (min, max) with 0 <= min <= max, got {distractor_sentences}")
    if not 1 <= facts_per_document <= 5:
        raise ValueError(f"facts_per_document must be in 1..5, got {facts_per_document}")
    max_people = len(_FIRST) * len(_LAST)
    if num_documents > max_people - 200:
        raise ValueError(
            f"at most {max_people - 200} distinct sparse documents can be generated (200 names are kept "
            f"for distractor sentences), asked for {num_documents}"
        )
    rng = random.Random(seed)
    people = [f"{first} {last}" for first in _FIRST for last in _LAST]
    rng.shuffle(people)
    entities, bystanders = people[:num_documents], people[num_documents:]
    companies: set[str] = set()
    docs = []
    for i in range(num_documents):
        company = _company_name(rng)
        while company in companies:
            company = _company_name(rng)
        companies.add(company)
        kind = "person" if rng.random() < 0.6 else "company"
        facts = rng.sample(_sparse_facts(rng, entities[i], kind, company), facts_per_document)
        n_distract = rng.randint(lo, hi)
        pieces = [
            ("d", rng.choice(_BOILERPLATE) if rng.random() < 0.3 else _distractor_sentence(rng, bystanders))
            for _ in range(n_distract)
        ]
        for fact in facts:
            pieces.insert(rng.randint(0, len(pieces)), ("f", fact))
        text, fact_spans, answer_spans, qa = "", [], [], []
        for tag, piece in pieces:
            sentence = piece if tag == "d" else piece[0]
            start = len(text) + (1 if text else 0)
            text = f"{text} {sentence}" if text else sentence
            if tag == "f":
                fact_spans.append((start, start + len(sentence)))
                a = sentence.rindex(piece[1])
                answer_spans.append((start + a, start + a + len(piece[1])))
                qa.append(piece[2])
        docs.append(
            Document(
                doc_id=f"{prefix}-{seed}-{i}",
                text=text,
                qa=tuple(qa),
                fact_spans=tuple(fact_spans),
                answer_spans=tuple(answer_spans),
            )
        )
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
    stream: str = "dense",
    facts_per_document: int = 2,
    distractor_sentences: tuple[int, int] = (5, 7),
) -> Splits:
    """Disjoint synthetic streams (one generator call, so no entity appears in two splits).

    ``stream="dense"``: :func:`generate_documents` (almost every sentence is asked about; data set label
    ``synthetic-facts``). ``stream="sparse"``: :func:`generate_sparse_documents` (a few fact sentences
    in distractor text, ``facts_per_document`` and ``distractor_sentences`` passed on; label
    ``synthetic-sparse-facts``).
    """
    sizes = (num_qa_tune, num_meta_train, num_meta_val, num_test, num_locality)
    if stream == "dense":
        docs = generate_documents(sum(sizes), seed, questions_per_document=questions_per_document)
        name = "synthetic-facts"
    elif stream == "sparse":
        docs = generate_sparse_documents(
            sum(sizes), seed, facts_per_document=facts_per_document, distractor_sentences=distractor_sentences
        )
        name = "synthetic-sparse-facts"
    else:
        raise ValueError(f"stream must be 'dense' or 'sparse', got {stream!r}")
    cuts, start = [], 0
    for n in sizes:
        cuts.append(tuple(docs[start : start + n]))
        start += n
    locality = tuple(d.text for d in cuts[4])
    return Splits(qa_tune=cuts[0], meta_train=cuts[1], meta_val=cuts[2], test=cuts[3], locality=locality, name=name)


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


CAMELS_SQUAD_RANGES = {
    "qa_tune": (0, 40006),
    "qa_val": (40006, 42118),
    "meta_train": (42118, 82011),
    "meta_val": (82011, 87599),
}
"""Question-index ranges into SQuAD v1.1 train used by CaMeLS (test = the SQuAD validation file)."""


def squad_dev_article_splits(
    path: str | os.PathLike | None,
    *,
    fractions: Sequence[float] = (0.5, 0.25, 0.05, 0.2),
    num_locality_articles: int = 2,
    max_chars: int = 600,
    split_seed: int = 0,
    seed: int = 0,
    label: str = "squad-v1.1-dev-article-split",
) -> Splits:
    """The SQuAD v1.1 dev file as a real-text stream, split **by article** into QA-tune / meta-train /
    meta-validation / test (``fractions`` of the articles, a seeded shuffle with ``split_seed``; the
    test split takes the remaining articles when the fractions sum to 1; no
    article in two splits), plus ``num_locality_articles`` further articles whose paragraphs are the
    locality texts. Only the dev set is available offline, so this is *not* CaMeLS's SQuAD-Seq: records
    carry ``label``.

    Paragraphs are cut after the last sentence end before ``max_chars`` characters (the models read at
    most ``max_doc_tokens`` tokens) and only questions whose answer lies inside the cut text are kept;
    ``Document.answer_spans`` / ``fact_spans`` are the answers' character spans (so the oracle weighting
    works here too). ``seed`` is accepted for symmetry and does not change the split.
    """
    path = resolve_data_file(path, "dev-v1.1.json", "SQuAD v1.1 dev JSON")
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); expected SQuAD v1.1 format") from error
    if not isinstance(blob, dict) or not isinstance(blob.get("data"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'data' list (SQuAD v1.1 format)")
    articles = []
    for a_index, article in enumerate(blob["data"]):
        docs = []
        for p_index, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise ValueError(f"{path}: a paragraph has no 'context' string")
            cut = len(context)
            if cut > max_chars:
                end = context.rfind(". ", 0, max_chars)
                cut = end + 1 if end > 0 else max_chars
            text = context[:cut]
            qa, spans = [], []
            for q in paragraph.get("qas", []):
                answers = [x for x in q.get("answers", []) if x.get("text", "").strip()]
                inside = [x for x in answers if x.get("answer_start", 10**9) + len(x["text"]) <= cut]
                if not inside:
                    continue
                qa.append(QAPair(q["question"], tuple(dict.fromkeys(x["text"] for x in answers))))
                spans.extend((x["answer_start"], x["answer_start"] + len(x["text"])) for x in inside)
            spans = tuple(sorted(set(spans)))
            docs.append(
                Document(
                    doc_id=f"squad-dev-{a_index}-{p_index}",
                    text=text,
                    qa=tuple(qa),
                    fact_spans=spans,
                    answer_spans=spans,
                )
            )
        articles.append(docs)
    if len(fractions) != 4 or any(f < 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"fractions must be four non-negative numbers summing to <= 1, got {list(fractions)}")
    order = list(range(len(articles)))
    random.Random(split_seed).shuffle(order)
    locality_ids, order = order[:num_locality_articles], order[num_locality_articles:]
    counts = [int(round(f * len(order))) for f in fractions]
    if abs(sum(fractions) - 1) < 1e-9:  # fractions summing to 1: the test split takes the remaining articles
        counts[-1] = len(order) - sum(counts[:-1])
    parts, start = [], 0
    for n in counts:
        parts.append(tuple(d for i in order[start : start + n] for d in articles[i] if d.qa))
        start += n
    if not all(parts):
        raise ValueError(f"{path}: too few articles ({len(articles)}) for four non-empty splits")
    locality = tuple(d.text for i in locality_ids for d in articles[i])
    return Splits(
        qa_tune=parts[0], meta_train=parts[1], meta_val=parts[2], test=parts[3], locality=locality, name=label
    )


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
    return Splits(
        qa_tune=tuple(part["qa_tune"]),
        meta_train=tuple(part["meta_train"]),
        meta_val=tuple(part["meta_val"]),
        test=tuple(test),
        locality=locality,
        name="squad-seq",
    )


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
        out.append(tuple(docs[start : start + n]))
        start += n
    return out
