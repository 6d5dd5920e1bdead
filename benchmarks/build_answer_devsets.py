"""Development sets for tuning the answerability gate (issue 10), written outside the repository.

    .venv/bin/python benchmarks/build_answer_devsets.py [--out /tmp/ragcli-devsets] [--shared ../shared]
                                                        [--seed 13]

Each set is a folder with `docs/` (the documents to ingest) and `questions.jsonl`, one row per
question: {id, question, answers (empty when the index cannot answer it), expected_source (the file
name under docs/ that answers it, or null), kind, split}. `split` is "dev" for about 70% of the rows
and "test" for the rest (a hash of the id), so thresholds can be chosen on one part and checked on the
other. `benchmarks/answer_eval.py SET_FOLDER` runs a set through the real ask pipeline.

Sets:
- squad-negative:  SQuAD 2.0 answerable questions over their paragraphs with every sentence that holds
                   a gold answer of any question of the paragraph removed ("on-topic passages that do
                   not contain the answer", RGB's negative rejection). A question is kept only when no
                   normalised gold answer of it occurs anywhere in the set's corpus. kind
                   `squad_negative`, answers [] (the original golds are in `removed_answers`).
- squad-positive:  the same questions over the intact paragraphs (kind `squad_answerable`): the
                   false-refusal control for squad-negative.
- rust-book:       the Rust book (Markdown) with ~100 off-topic questions (general knowledge and other
                   technical domains; kind `off_topic`) and ~100 in-corpus questions built from its
                   section headings, each with the chapter file as expected_source (kind `in_corpus`).
- postgres:        79 pages of the PostgreSQL 15 manual (tutorial, DDL, data types, backup, indexes,
                   routine maintenance, MVCC) with hand-written questions an engineer would type, not
                   built from headings (benchmarks/data/postgres_questions.jsonl: each with its page and
                   short gold strings from the page's prose; kind `in_corpus`), and the rust-book set's
                   off-topic questions but the two about SQL (kind `off_topic`).
- rgb:             generated news-like passages sharing one index: prizes, quarterly revenue, cup
                   finals, mayoral elections and censuses over many years, so the year, quarter or
                   entity decides the answer; some passages also name the previous year's result. Some
                   passages are held out of the index, and their questions are kept as unanswerable
                   (kind `rgb_negative`); the rest are `rgb_answerable`.

The data under ../shared is read by path and never copied into the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_OUT = Path("/tmp/ragcli-devsets")
DEFAULT_SHARED = REPO.parent / "shared"


@dataclass
class Question:
    id: str
    question: str
    answers: list[str]
    expected_source: str | None
    kind: str
    extra: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra") or {}
        return {**data, "split": split_of(self.id), **extra}


def split_of(question_id: str) -> str:
    """A stable 70/30 dev/test split, independent of the order questions were generated in."""
    return "dev" if int(hashlib.sha256(question_id.encode()).hexdigest()[:8], 16) % 10 < 7 else "test"


def write_set(out: Path, name: str, docs: dict[str, str], questions: list[Question]) -> dict[str, Any]:
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "docs").mkdir(parents=True)
    for file_name, text in docs.items():
        (folder / "docs" / file_name).write_text(text, encoding="utf-8")
    with (folder / "questions.jsonl").open("w", encoding="utf-8") as handle:
        for question in questions:
            handle.write(json.dumps(question.row(), ensure_ascii=False) + "\n")
    kinds = Counter(q.kind for q in questions)
    print(f"{name}: {len(docs)} documents, {len(questions)} questions {dict(kinds)}", file=sys.stderr)
    return {"documents": len(docs), "questions": len(questions), "kinds": dict(kinds)}


def _normalised(text: str) -> str:
    from ragcli.evaluation.squad import normalize_answer

    return normalize_answer(text)


# ----- a. SQuAD negative rejection ---------------------------------------------------------------------
def build_squad(squad_file: Path, limit: int) -> tuple[dict[str, str], dict[str, str], list[Question], list[Question]]:
    from ragcli.retrieval.sentences import sentence_spans

    dataset = json.loads(squad_file.read_text(encoding="utf-8"))
    stripped_docs: dict[str, str] = {}
    intact_docs: dict[str, str] = {}
    candidates: list[tuple[str, dict[str, Any]]] = []
    for article in dataset["data"]:
        title = article["title"]
        for index, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            answerable = [qa for qa in paragraph["qas"] if not qa.get("is_impossible") and qa["answers"]]
            if not answerable:
                continue
            spans = sentence_spans(context)
            # Remove every sentence that holds a gold span of any question of the paragraph: a copy
            # stripped for one question must not answer its neighbour.
            removed = {
                i
                for qa in answerable
                for answer in qa["answers"]
                for i, (start, end) in enumerate(spans)
                if start < answer["answer_start"] + len(answer["text"]) and answer["answer_start"] < end
            }
            kept = [context[start:end] for i, (start, end) in enumerate(spans) if i not in removed]
            if len(kept) < 2:  # a paragraph reduced to one sentence is barely on topic any more
                continue
            file_name = f"{re.sub(r'[^A-Za-z0-9_-]+', '_', title)}-{index}.txt"
            stripped_docs[file_name] = f"{title.replace('_', ' ')}\n\n" + " ".join(kept) + "\n"
            intact_docs[file_name] = f"{title.replace('_', ' ')}\n\n{context}\n"
            candidates.extend((file_name, qa) for qa in answerable)
    corpus = "\n".join(_normalised(text) for text in stripped_docs.values())
    negatives: list[Question] = []
    positives: list[Question] = []
    for file_name, qa in candidates:
        golds = sorted({a["text"] for a in qa["answers"]})
        normalised = [g for g in (_normalised(g) for g in golds) if g]
        if not normalised or any(_contains_phrase(corpus, g) for g in normalised):
            continue
        negatives.append(
            Question(
                qa["id"], qa["question"], [], None, "squad_negative",
                {"removed_answers": golds, "paragraph": file_name},
            )
        )
        positives.append(Question(qa["id"], qa["question"], golds, file_name, "squad_answerable"))
    rng = random.Random(7)
    order = sorted(range(len(negatives)), key=lambda _: rng.random())[:limit]
    order.sort()
    return (
        stripped_docs,
        intact_docs,
        [negatives[i] for i in order],
        [positives[i] for i in order],
    )


def _contains_phrase(haystack: str, needle: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


# ----- b. off-topic and in-corpus questions over the Rust book -----------------------------------------
CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Japan": "Tokyo", "Canada": "Ottawa", "Australia": "Canberra",
    "Brazil": "Brasília", "Kenya": "Nairobi", "Norway": "Oslo", "Peru": "Lima", "Egypt": "Cairo",
    "Vietnam": "Hanoi", "Portugal": "Lisbon", "Argentina": "Buenos Aires", "Poland": "Warsaw",
    "Thailand": "Bangkok", "Morocco": "Rabat", "Chile": "Santiago", "Finland": "Helsinki",
}
OFF_TOPIC = [
    # history
    "When did the Berlin Wall fall?", "Who was the first emperor of Rome?",
    "In which year did the French Revolution begin?", "Who wrote the Declaration of Independence?",
    "When did World War I end?", "Who was Cleopatra?", "What caused the fall of the Western Roman Empire?",
    "Who discovered penicillin?", "When did the Apollo 11 mission land on the Moon?",
    "Who was the first woman to win a Nobel Prize?", "What was the Magna Carta?",
    "Who painted the Mona Lisa?",
    # cooking
    "How long should I boil an egg for a soft yolk?", "What is the best flour for sourdough bread?",
    "How do I make a béchamel sauce?", "At what temperature should I roast a chicken?",
    "How do I caramelize onions?", "What is the difference between baking soda and baking powder?",
    "How long does risotto take to cook?", "How do I keep guacamole from turning brown?",
    "What wine goes well with salmon?", "How do I make fresh pasta without a machine?",
    # science and health
    "What is the speed of light in a vacuum?", "How does photosynthesis work?",
    "What is the boiling point of water at sea level?", "How many bones are in the human body?",
    "What causes the seasons on Earth?", "What is the chemical symbol for gold?",
    "How do vaccines train the immune system?", "What is the normal resting heart rate for adults?",
    "How far is the Moon from the Earth?", "What is a black hole?",
    "How much water should an adult drink per day?", "What are the symptoms of vitamin D deficiency?",
    # Kubernetes and operations
    "How do I scale a Kubernetes deployment to five replicas?", "What is a Kubernetes pod?",
    "How do I roll back a Kubernetes deployment?", "What does kubectl apply do?",
    "How do I configure a Kubernetes ingress controller?", "What is a Helm chart?",
    "How do I view the logs of a crashed pod?", "How do I set resource limits on a container in Kubernetes?",
    "What is the difference between a Docker image and a container?", "How do I write a Dockerfile for a Node.js app?",
    "How do I configure Nginx as a reverse proxy?", "How do I renew a Let's Encrypt certificate?",
    # Java and other languages
    "How do I create a thread pool in Java?", "What is the Java Virtual Machine?",
    "How do I read a file line by line in Java?", "What is a Java interface?",
    "How do I configure Maven to build a fat jar?", "What is Spring Boot?",
    "How do I use list comprehensions in Python?", "What is the Python global interpreter lock?",
    "How do I create a virtual environment in Python?", "What is a goroutine in Go?",
    "How do I declare a variable in JavaScript with let?", "What is a React hook?",
    "How do I install packages with npm?", "What is a C# delegate?",
    "How do I write a SQL query with a LEFT JOIN?", "How do I create an index in PostgreSQL?",
    "What is the difference between TCP and UDP?", "How do I undo the last git commit?",
    # geography, sports, finance, misc
    "What is the longest river in the world?", "How tall is Mount Everest?",
    "Which ocean is the largest?", "How many players are on a soccer team?",
    "Who won the FIFA World Cup in 2018?", "How long is a marathon?",
    "What are the rules of cricket?", "When were the first modern Olympic Games held?",
    "What is compound interest?", "How do I file my taxes online?", "What is an index fund?",
    "How does a mortgage work?", "What is inflation?", "How do I change a flat tire?",
    "How often should I water a cactus?", "What is the best time to plant tulips?",
    "How do I train a puppy to sit?", "How many hours of sleep does a teenager need?",
    "What language is spoken in Brazil?", "What is the population of Tokyo?",
    "Who composed the Four Seasons?", "Who wrote Pride and Prejudice?",
    "What is the plot of Hamlet?", "How do I tie a bowline knot?",
]
_GERUNDS = {
    "Accepting": "accept", "Adding": "add", "Allowing": "allow", "Bringing": "bring", "Building": "build",
    "Checking": "check", "Comparing": "compare", "Controlling": "control", "Creating": "create",
    "Customizing": "customize", "Defining": "define", "Extending": "extend", "Fixing": "fix",
    "Generating": "generate", "Getting": "get", "Handling": "handle", "Implementing": "implement",
    "Importing": "import", "Improving": "improve", "Installing": "install", "Listening": "listen to",
    "Matching": "match", "Organizing": "organize", "Printing": "print", "Processing": "process",
    "Providing": "provide", "Publishing": "publish", "Reading": "read", "Redirecting": "redirect",
    "Refactoring": "refactor", "Removing": "remove", "Returning": "return", "Running": "run",
    "Separating": "separate", "Setting": "set", "Sharing": "share", "Simulating": "simulate",
    "Specifying": "specify", "Storing": "store", "Testing": "test", "Turning": "turn",
    "Updating": "update", "Using": "use", "Validating": "validate", "Writing": "write",
    "Working": "work", "Declaring": "declare", "Referring": "refer", "Grouping": "group",
    "Documenting": "document", "Exporting": "export", "Iterating": "iterate", "Dropping": "drop",
    "Destructuring": "destructure", "Ignoring": "ignore", "Calling": "call", "Capturing": "capture",
    "Moving": "move", "Creating,": "create", "Indexing": "index", "Slicing": "slice",
}
_SKIP_HEADINGS = {
    "summary", "companies", "students", "open source developers", "teams of developers",
    "people who value speed and stability", "who this book is for", "how to use this book",
    "source code", "maintenance time", "contents", "examples", "exercises", "conclusion",
}
HANDWRITTEN_IN_CORPUS = [
    ("What is the difference between String and &str?", "ch04-03-slices.md"),
    ("What are the three rules of ownership in Rust?", "ch04-01-what-is-ownership.md"),
    ("How do I borrow a value mutably?", "ch04-02-references-and-borrowing.md"),
    ("How do I handle a missing file with Result?", "ch09-02-recoverable-errors-with-result.md"),
    ("What does the question mark operator do?", "ch09-02-recoverable-errors-with-result.md"),
    ("How do I read command line arguments in Rust?", "ch12-01-accepting-command-line-arguments.md"),
    ("What is a lifetime annotation?", "ch10-03-lifetime-syntax.md"),
    ("How do I share data between threads with Arc and Mutex?", "ch16-03-shared-state.md"),
    ("What is Box<T> used for?", "ch15-01-box.md"),
    ("How do I create a new project with Cargo?", "ch01-03-hello-cargo.md"),
]


_PROPER = {"Rust", "Cargo", "Crates.io", "Clippy", "Windows", "Linux", "macOS", "I/O", "IDEs", "API", "Rustup"}
_NOT_A_TOPIC = {"when", "in", "with", "where", "why", "other", "more", "non-operator", "to", "for", "and", "or"}
_SENTENCE_VERBS = {"is", "are", "can", "must", "will", "does", "do", "has", "have"}


def heading_question(heading: str) -> str | None:
    """A question a reader would ask about a section, from its heading; None for headings that make none."""
    text = re.sub(r"\s+", " ", heading.replace("“", '"').replace("”", '"')).strip().rstrip(".:!")
    text = re.sub(r"^Appendix [A-Z]\s*[:-]\s*", "", text).split(":")[0].strip()
    words = text.split()
    if text.lower() in _SKIP_HEADINGS or len(text) < 4 or ("`" not in text and len(words) < 2):
        return None
    if words[0].lower() in _NOT_A_TOPIC or any(w.lower() in _SENTENCE_VERBS for w in words[1:]):
        return None  # a clause or a sentence, not a topic: no natural question fits it
    if text.endswith("?"):
        return text
    if words[0] in _GERUNDS:
        # "Building and Running a Project" -> "build and run a project"
        rest = [_GERUNDS.get(w, w) if before == "and" else w for before, w in pairwise(words)]
        return f"How do I {_GERUNDS[words[0]]} {_sentence_case(' '.join(rest))}?"
    if words[0].endswith("ing") and "`" not in words[0]:
        return None  # an unknown gerund would make a broken question
    topic = _sentence_case(text)
    verb = "are" if words[0].lower() not in {"a", "an"} and words[-1].endswith("s") and not words[-1].endswith(("ss", "`")) else "is"
    return f"What {verb} {topic} in Rust?" if "rust" not in topic.lower() else f"What {verb} {topic}?"


def _sentence_case(text: str) -> str:
    """'Storing Keys with Associated Values' -> 'storing keys with associated values'; code and names kept."""
    words = []
    for word in text.split(" "):
        if "`" in word or word in _PROPER or not (word[:1].isupper() and word[1:].replace("-", "").islower()):
            words.append(word)
        else:
            words.append(word.lower())
    return " ".join(words)


def off_topic_questions() -> list[str]:
    return [f"What is the capital of {country}?" for country in CAPITALS] + OFF_TOPIC


def build_rust_book(book: Path, rng: random.Random, in_corpus: int) -> tuple[dict[str, str], list[Question]]:
    src = book / "src"
    docs = {path.name: path.read_text(encoding="utf-8") for path in sorted(src.glob("*.md"))}
    docs.pop("SUMMARY.md", None)
    by_heading: dict[str, list[str]] = {}
    for name, text in docs.items():
        for match in re.finditer(r"^#{2,3} (.+)$", text, re.MULTILINE):
            by_heading.setdefault(match.group(1).strip(), []).append(name)
    generated: list[tuple[str, str]] = []
    for heading, files in sorted(by_heading.items()):
        if len(set(files)) != 1:  # a heading used in several chapters has no single right source
            continue
        question = heading_question(heading)
        if question:
            generated.append((question, files[0]))
    rng.shuffle(generated)
    chosen = HANDWRITTEN_IN_CORPUS + generated[: max(0, in_corpus - len(HANDWRITTEN_IN_CORPUS))]
    questions = [
        Question(f"rust-in-{i:03d}", question, [], source, "in_corpus") for i, (question, source) in enumerate(chosen)
    ]
    questions += [Question(f"rust-off-{i:03d}", q, [], None, "off_topic") for i, q in enumerate(off_topic_questions())]
    return docs, questions


POSTGRES_PAGES = ("tutorial-*.html", "ddl-*.html", "datatype-*.html", "backup-*.html", "indexes-*.html",
                  "routine-*.html", "mvcc*.html")
POSTGRES_QUESTIONS = REPO / "benchmarks" / "data" / "postgres_questions.jsonl"


def build_postgres(html: Path) -> tuple[dict[str, str], list[Question]]:
    """Natural questions over a reference manual: the in-corpus kind that heading-built questions miss
    (they share the heading's words, which the answer's section then holds)."""
    docs = {path.name: path.read_text(encoding="utf-8") for glob in POSTGRES_PAGES for path in sorted(html.glob(glob))}
    rows = [json.loads(line) for line in POSTGRES_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [
        Question(f"pg-in-{i:03d}", row["question"], row["answers"], row["source"], "in_corpus")
        for i, row in enumerate(rows)
    ]
    # The Rust book's "other technical domains" include SQL: the manual answers those.
    off_topic = [q for q in off_topic_questions() if not re.search(r"\b(?:SQL|PostgreSQL)\b", q)]
    questions += [Question(f"pg-off-{i:03d}", q, [], None, "off_topic") for i, q in enumerate(off_topic)]
    return docs, questions


# ----- c. RGB-style: many similar passages, the constraint decides -----------------------------------
FIRST = """Mirela Anton Ingrid Tomasz Amara Kenji Sofia Rafael Lena Dmitri Aisha Mateo Greta Hugo Naomi
Oskar Priya Lucien Yara Elias Ines Viktor Maren Tobias Leila Jonas Selma Nikolai Clara Felix Zora
Anders Maya Emil Olga Henrik Alma Pavel Rosa Idris""".split()  # noqa: SIM905 - a word list reads best as words  # noqa: SIM905 - a word list reads best as words
LAST = """Okafor Lindqvist Moreau Kowalski Tanaka Haddad Brennan Castellano Novak Achterberg Oyelaran
Whitcombe Petrova Vasquez Halloran Sandoval Ferreira Nakamura Dubois Eriksen Marchetti Osei Varga Holm
Abernathy Quintero Szabo Lindgren Calloway Radu Mbeki Farrow Iversen Delacroix Yilmaz Bergstrom""".split()  # noqa: SIM905 - a word list reads best as words
PRIZES = [
    "Halvorsen Prize for Chemistry", "Marrow Medal for Poetry", "Castell Award for Architecture",
    "Ondine Prize for Marine Biology", "Tessaly Prize for Mathematics", "Gravenor Award for Journalism",
    "Brightwater Prize for Fiction", "Kessler Medal for Engineering", "Aldous Prize for Economics",
    "Veridian Award for Film Direction",
]
PRIZE_WORK = [
    "pioneering research on catalytic surfaces", "a collection of coastal elegies", "a timber library in the north",
    "a decade-long survey of deep-sea corals", "a proof about prime gaps", "an investigation into port contracts",
    "a debut novel about three sisters", "a lightweight bridge design", "a study of rural credit markets",
    "a documentary about river towns", "work on quantum sensors", "a memoir in verse",
]
CITIES = """Arlon Brevik Calder Dunmore Esterhaven Falkirk Glenmoor Harwick Ilsby Jarnholm Kelbridge Lorvik
Marrowgate Northam Oakhurst Pellston Quarry Rosmund Saltmere Tarnby Ulverston Valemont Westmarch Yarrow""".split()  # noqa: SIM905 - a word list reads best as words
COMPANIES = [
    "Brightwave Systems", "Corvid Logistics", "Helion Foods", "Northgate Semiconductors", "Pallas Insurance",
    "Quillon Pharmaceuticals",
]
CUPS = ["Northern Cup", "Coastal Shield", "Highland Trophy", "Riverside Cup", "Valley Challenge Cup",
        "Harbour Trophy", "Midland Shield", "Lakeside Cup"]
TEAM_NOUNS = "Mariners Rovers Falcons Wanderers Athletic United Rangers Harriers Comets Stags".split()  # noqa: SIM905
PARTIES = ["Green Alliance", "Civic Party", "Labour Union", "Liberal Forum", "Independent", "Heritage Party"]
ORDINAL = {1: "first", 2: "second", 3: "third", 4: "fourth"}
MONTHS = "January February March April May June July August September October November December".split()  # noqa: SIM905


class RgbBuilder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.docs: dict[str, str] = {}
        self.questions: list[Question] = []
        self._names: set[str] = set()

    def person(self) -> str:
        while True:
            name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
            if name not in self._names:
                self._names.add(name)
                return name

    def add(self, family: str, key: str, text: str, held_out: bool, asks: Iterable[tuple[str, str]]) -> None:
        """One passage and its questions; a held-out passage is not indexed and its questions get no answer."""
        file_name = None
        if not held_out:
            file_name = f"news-{len(self.docs):04d}.txt"
            self.docs[file_name] = text + "\n"
        for n, (question, answer) in enumerate(asks):
            self.questions.append(
                Question(
                    f"rgb-{family}-{key}-{n}",
                    question,
                    [] if held_out else [answer],
                    file_name,
                    "rgb_negative" if held_out else "rgb_answerable",
                    {"family": family, "held_out_answer": answer} if held_out else {"family": family},
                )
            )

    def held_out(self, values: list[Any], count: int) -> set[Any]:
        # Never the first: the passage after a held-out one may name its predecessor otherwise.
        return set(self.rng.sample(values[1:], count))

    def prizes(self) -> None:
        years = list(range(2014, 2023))
        for prize in PRIZES:
            missing = self.held_out(years, 2)
            winners = {year: self.person() for year in years}
            for year in years:
                winner = winners[year]
                text = (
                    f"{self.rng.choice(CITIES)}, {self.rng.choice(MONTHS)} {year}. The {year} {prize} was awarded to "
                    f"{winner} for {self.rng.choice(PRIZE_WORK)}. The jury praised the work's ambition."
                )
                if year - 1 in winners and year - 1 not in missing and self.rng.random() < 0.6:
                    text += f" Last year's winner, {winners[year - 1]}, presented the award."
                self.add(
                    "prize", f"{prize.split()[0].lower()}-{year}", text, year in missing,
                    [(f"Who won the {prize} in {year}?", winner)],
                )

    def revenue(self) -> None:
        quarters = [(year, q) for year in (2021, 2022, 2023) for q in (1, 2, 3, 4)]
        for company in COMPANIES:
            missing = self.held_out(quarters, 2)
            base = self.rng.randint(120, 900)
            revenue = {(2020, q): base + self.rng.randint(-40, 40) for q in (1, 2, 3, 4)}
            for year, q in quarters:
                revenue[(year, q)] = max(50, revenue[(year - 1, q)] + self.rng.randint(-60, 90))
            for year, q in quarters:
                now, before = revenue[(year, q)], revenue[(year - 1, q)]
                change = round(100 * (now - before) / before)
                direction = "up" if change >= 0 else "down"
                text = (
                    f"{company} reported revenue of ${now} million for the {ORDINAL[q]} quarter of {year}, "
                    f"{direction} {abs(change)}% from a year earlier. Operating margin was "
                    f"{self.rng.randint(4, 28)}%."
                )
                if (year - 1, q) not in missing and self.rng.random() < 0.6:
                    text += f" In Q{q} {year - 1} the company had reported ${before} million."
                self.add(
                    "revenue", f"{company.split()[0].lower()}-{year}q{q}", text, (year, q) in missing,
                    [(self.rng.choice([
                        f"What was {company}'s revenue in Q{q} {year}?",
                        f"How much revenue did {company} report for the {ORDINAL[q]} quarter of {year}?",
                    ]), f"${now} million")],
                )

    def cups(self) -> None:
        years = list(range(2015, 2023))
        for cup in CUPS:
            missing = self.held_out(years, 2)
            teams = [f"{city} {noun}" for city, noun in zip(
                self.rng.sample(CITIES, 6), self.rng.sample(TEAM_NOUNS, 6), strict=True)]
            winners: dict[int, str] = {}
            for year in years:
                winner, loser = self.rng.sample(teams, 2)
                winners[year] = winner
                scorer = self.person()
                goals = sorted((self.rng.randint(0, 3), self.rng.randint(1, 4)), reverse=True)
                goals[0] = max(goals[0], goals[1] + 1)
                text = (
                    f"{winner} won the {year} {cup} final, beating {loser} {goals[0]}-{goals[1]} in "
                    f"{self.rng.choice(CITIES)}. {scorer} scored the decisive goal in the second half."
                )
                if year - 1 in winners and year - 1 not in missing and self.rng.random() < 0.5:
                    text += f" The {year - 1} final had been won by {winners[year - 1]}."
                self.add(
                    "cup", f"{cup.split()[0].lower()}-{year}", text, year in missing,
                    [(f"Which team won the {year} {cup}?", winner),
                     (f"Who scored the decisive goal in the {year} {cup} final?", scorer)],
                )

    def elections(self) -> None:
        years = [2008, 2012, 2016, 2020]
        for town in self.rng.sample(CITIES, 8):
            missing = self.held_out(years, 1)
            for year in years:
                mayor, rival = self.person(), self.person()
                share = self.rng.randint(41, 68)
                text = (
                    f"In the {year} mayoral election in {town}, {mayor} ({self.rng.choice(PARTIES)}) won with "
                    f"{share}% of the vote, defeating {rival}. Turnout was {self.rng.randint(35, 72)}%."
                )
                self.add(
                    "election", f"{town.lower()}-{year}", text, year in missing,
                    [(f"Who was elected mayor of {town} in {year}?", mayor),
                     (f"What share of the vote did the winner of the {year} mayoral election in {town} get?",
                      f"{share}%")],
                )

    def censuses(self) -> None:
        years = [2000, 2005, 2010, 2015, 2020]
        towns = [t for t in CITIES if t not in {"Brevik"}]
        for town in self.rng.sample(towns, 8):
            missing = self.held_out(years, 2)
            population = self.rng.randint(4000, 90000)
            for year in years:
                population = round(population * self.rng.uniform(0.93, 1.12))
                text = (
                    f"The {year} census counted {population:,} residents in {town}. "
                    f"The regional office noted {self.rng.randint(200, 3000):,} new households since the last count."
                )
                self.add(
                    "census", f"{town.lower()}-{year}", text, year in missing,
                    [(f"What was the population of {town} according to the {year} census?", f"{population:,}")],
                )

    def build(self) -> tuple[dict[str, str], list[Question]]:
        self.prizes()
        self.revenue()
        self.cups()
        self.elections()
        self.censuses()
        # Shuffle the files' names so the order of the index says nothing about the answer.
        names = list(self.docs)
        shuffled = names[:]
        self.rng.shuffle(shuffled)
        rename = dict(zip(names, shuffled, strict=True))
        docs = {rename[name]: text for name, text in self.docs.items()}
        for question in self.questions:
            if question.expected_source:
                question.expected_source = rename[question.expected_source]
        return docs, self.questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--squad-questions", type=int, default=300, help="negative-rejection questions kept")
    parser.add_argument("--in-corpus", type=int, default=100, help="in-corpus Rust book questions")
    args = parser.parse_args()
    out = args.out.resolve()
    if out == REPO or REPO in out.parents:
        parser.error("--out must be outside the repository (the sets hold third-party text)")
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"seed": args.seed, "shared": str(args.shared), "sets": {}}

    squad_file = args.shared / "eval/squad-v2-part/dev-v2.0-part.json"
    if squad_file.is_file():
        stripped, intact, negatives, positives = build_squad(squad_file, args.squad_questions)
        manifest["sets"]["squad-negative"] = write_set(out, "squad-negative", stripped, negatives)
        manifest["sets"]["squad-positive"] = write_set(out, "squad-positive", intact, positives)
    else:
        print(f"skipped squad-negative/-positive: {squad_file} is absent", file=sys.stderr)

    book = args.shared / "corpora/rust-book-md"
    if (book / "src").is_dir():
        docs, questions = build_rust_book(book, random.Random(args.seed), args.in_corpus)
        manifest["sets"]["rust-book"] = write_set(out, "rust-book", docs, questions)
    else:
        print(f"skipped rust-book: {book}/src is absent", file=sys.stderr)

    manual = args.shared / "corpora/postgresql-15-docs/html"
    if manual.is_dir():
        docs, questions = build_postgres(manual)
        manifest["sets"]["postgres"] = write_set(out, "postgres", docs, questions)
    else:
        print(f"skipped postgres: {manual} is absent", file=sys.stderr)

    docs, questions = RgbBuilder(random.Random(args.seed)).build()
    manifest["sets"]["rgb"] = write_set(out, "rgb", docs, questions)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main()
