"""The training mix of the bundled InBedder: labeled natural texts turned into questions, balanced by kind.

``build_aspect_mix`` reads ``shared/data/aspects`` records (``{"text", "source", "labels": {aspect:
label}}``) and asks each text questions about its labels, in many phrasings, so one text is
embedded differently under different questions. The mix is balanced by *kind of question*
(language, sentiment, topic, style...), not by dataset size, and inside a kind as evenly as the
data allows over the answers. "Does not apply" questions ("Which drug is reviewed?" of a news
sentence) get the answer ``none``. Every example carries a ``group`` (``kind:answer``) for the
answer-supervised contrastive term of ``train.loss``.

Pure Python: no torch, no tokenizer.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NOT_APPLICABLE = "none"

# kind -> phrasings. None of them may equal an evaluation instruction (``check_questions``).
QUESTIONS: dict[str, tuple[str, ...]] = {
    "language": (
        "Which language is this written in?", "In what language was this text written?",
        "Name the language of this passage.", "Which language does the writer use?",
        "What language are these words in?", "Identify the language of the text.",
        "The text is in which language?", "Tell me the language this was written in.",
        "Which natural language is used here?", "What is the language of this message?",
    ),
    "script": (
        "Which writing system is used here?", "What script is this text written in?",
        "Which alphabet or script do these characters belong to?", "Name the script of this text.",
        "In which writing system is the passage?",
    ),
    "sentiment": (
        "Is the overall tone positive, negative or neutral?", "What polarity does this text have?",
        "Does the writer sound positive or negative?", "How does the author feel overall, positively or negatively?",
        "Is the opinion here favourable, unfavourable or neutral?", "Which sentiment does the message carry?",
        "Is this a positive or a negative text?", "What is the emotional polarity of this text?",
        "Positive, negative or neutral: which describes this text?", "What attitude does the writer take, good or bad?",
    ),
    "market_sentiment": (
        "Is the market outlook here bullish or bearish?", "Does this news point to rising or falling prices?",
        "What outlook for investors does this express?", "Is this good or bad news for the stock?",
    ),
    "rating": (
        "What score out of 10 did the reviewer give?", "How many points out of ten would the writer award?",
        "What rating does this review give, out of 10?", "On a scale of one to ten, how did the reviewer rate it?",
    ),
    "effectiveness": (
        "How well did the medicine work for the reviewer?", "How effective was the drug, according to the patient?",
        "Did the treatment work, and how well?", "What does the reviewer say about the drug's effectiveness?",
    ),
    "side_effects": (
        "How severe were the side effects?", "What side effects did the patient report, and how bad were they?",
        "How bad were the drug's side effects for the reviewer?", "Were there side effects, and how strong?",
    ),
    "topic": (
        "What subject does this text cover?", "What is this passage about?", "Which topic is being discussed?",
        "What area does this text deal with?", "What is the subject matter here?",
        "Which field or theme is this about?", "What is the text mainly concerned with?",
        "Summarize the subject in a word or two.", "What is being talked about here?",
    ),
    "text_kind": (
        "What kind of text is this?", "What type of document is this taken from?",
        "Where would you find a text like this?", "What sort of writing is this?",
        "What genre does this text belong to?", "Which kind of source is this text from?",
        "What form of writing is this passage?",
    ),
    "product": (
        "Which product is being reviewed?", "What item does the writer review?",
        "What product is this review about?", "Which drug or product is discussed?",
    ),
    "condition": (
        "Which medical condition is being treated?", "What illness does the writer have?",
        "What health problem is mentioned?", "Which disease or condition is this about?",
    ),
    "style": (
        "Is the wording old-fashioned or modern?", "How archaic is the language of this text?",
        "Which period of English does this wording come from?",
        "Is this written in an archaic or a contemporary style?",
        "Does this sound like old or modern English?", "What writing style is this, archaic or contemporary?",
    ),
    "reading_level": (
        "What reading level is this written for?", "How hard is this text to read?",
        "Is this text for elementary, intermediate or advanced readers?", "What level of reader is this aimed at?",
        "How difficult is the language of this passage?",
    ),
    "toxicity": (
        "Is this text toxic?", "Is this message hateful, offensive or neither?",
        "Does the writer use abusive language?",
        "Is this comment offensive?", "How toxic is this post?", "Does this contain hate speech?",
        "Is the language here insulting?",
    ),
    "hostility": (
        "What kind of hostility does this post show?", "How hostile is the writer, and in what way?",
        "Which form of hostility does the message express?",
    ),
    "target": (
        "Who is being attacked?", "Which group of people is targeted?", "At whom is the hostility aimed?",
        "Who is the target of this message?", "Which people does the writer insult?",
    ),
    "target_attribute": (
        "What characteristic of the target is attacked?", "On what grounds is the target attacked?",
        "Which attribute of the victims does the post attack?",
    ),
    "directness": (
        "Is the attack direct or indirect?", "Does the writer address the target directly?",
    ),
    "stance": (
        "Does the writer support or oppose the claim?", "Is the author for or against the idea?",
        "What position does the writer take on the issue?", "Does this argue for or against the proposal?",
        "Is this argument in favour or against?",
    ),
    "humor": (
        "Is this meant to be funny?", "Is this a joke?", "Is the text humorous?", "Would this make people laugh?",
    ),
    "clickbait": (
        "Is this headline clickbait?", "Is this a clickbait title?", "Does this headline bait readers into clicking?",
    ),
    "spam": (
        "Is this message spam?", "Is this text an unwanted advertisement?", "Is this a spam message or a normal one?",
    ),
    "politeness": (
        "How polite is the writer?", "Is the tone polite, neutral or rude?", "Is this message courteous or impolite?",
        "How respectful is the way this is phrased?",
    ),
    "testament": (
        "Which testament is this verse from?", "Is this passage from the Old or the New Testament?",
    ),
    "formality": (
        "How formal is this text?", "Is the register formal, neutral or informal?",
        "Is this written formally or casually?",
    ),
    "sarcasm": (
        "Is the writer being sarcastic?", "Is this remark sarcastic or sincere?",
        "Does the author mean this ironically?",
    ),
    "dialect": (
        "Which regional variety of the language is this?", "What dialect is this written in?",
    ),
}

# For stance, the claim is part of the question half the time.
STANCE_WITH_TARGET = (
    "Does the writer support or oppose the claim that {target}?",
    "Is the author for or against this: {target}?",
    "Regarding '{target}', is the writer in favour or against?",
)

# (source, label name) -> kind; labels not listed are not asked.
ASPECT_KINDS: dict[str, str] = {
    "language": "language", "script": "script", "sentiment": "sentiment", "market_sentiment": "market_sentiment",
    "rating": "rating", "effectiveness": "effectiveness", "side_effects": "side_effects", "topic": "topic",
    "genre": "text_kind", "domain": "text_kind", "style": "style", "reading_level": "reading_level",
    "toxicity": "toxicity", "hostility": "hostility", "target": "target", "target_attribute": "target_attribute",
    "directness": "directness", "stance": "stance", "humor": "humor", "clickbait": "clickbait", "spam": "spam",
    "politeness": "politeness", "testament": "testament", "drug": "product", "condition": "condition",
    "formality": "formality", "sarcasm": "sarcasm", "dialect": "dialect", "era": "style",
}

# What kind of text each source is, where the source itself says so (its documentation).
SOURCE_TEXT_KIND: dict[str, str] = {
    "nsmc_korean_movies": "movie review", "twitter_financial_news": "financial news", "druglib_reviews": "drug review",
    "medical_abstracts": "medical abstract", "sms_spam": "text message", "bible_kjv_web": "bible verse",
    "onestopenglish": "news article", "clickbait_headlines": "headline", "sib200": "encyclopedia",
}

# Shorter words for long labels (the model answers in three word pieces).
SHORT_ANSWERS: dict[str, str] = {
    "ethnic or national origin": "ethnicity", "people with disabilities": "disabled people",
    "early modern english": "archaic", "modern english": "contemporary",
    "question and answer forum": "forum", "newsgroup post": "newsgroup", "general pathological conditions": "pathology",
    "kenya or tanzania": "kenya", "extremely severe side effects": "extremely severe", "severe side effects": "severe",
    "moderate side effects": "moderate", "mild side effects": "mild", "no side effects": "none",
    "highly effective": "highly effective", "considerably effective": "considerably effective",
}

# Kinds asked of texts without such a label, answered "none" (the question does not apply), except
# in the sources listed, where it may apply but the label is missing.
NOT_APPLICABLE_KINDS: dict[str, tuple[str, ...]] = {
    "product": ("nsmc_korean_movies",),  # a movie review: the product is an unnamed film
    "condition": ("medical_abstracts",),  # abstracts discuss conditions; not labeled as such
    "target": ("davidson_offensive",),  # hostile tweets whose target is not labeled
}

# Share of the aspect examples per kind (normalised over the kinds the data has).
KIND_WEIGHTS: dict[str, float] = {
    "language": 12, "script": 3, "sentiment": 14, "market_sentiment": 2, "rating": 4, "effectiveness": 2,
    "side_effects": 2, "topic": 10, "text_kind": 8, "product": 4, "condition": 2, "style": 4, "reading_level": 3,
    "toxicity": 7, "hostility": 2, "target": 4, "target_attribute": 2, "directness": 1, "stance": 6, "humor": 2.5,
    "clickbait": 2.5, "spam": 2, "politeness": 4, "testament": 1, "formality": 3, "sarcasm": 3, "dialect": 2,
}


@dataclass(frozen=True)
class MixExample:
    """One training example: ``question`` about ``context``, its short ``answer``, and its contrastive group."""

    context: str
    question: str
    answer: str
    source: str
    group: str

    def as_record(self) -> dict[str, str]:
        return {"context": self.context, "question": self.question, "answer": self.answer, "source": self.source,
                "group": self.group}


def answer_word(label: str) -> str:
    """The plain-word answer for a gold label (short forms for long labels)."""
    label = " ".join(str(label).split()).lower()
    return SHORT_ANSWERS.get(label, label)


def candidates(records: Iterable[Mapping], *, exclude_sources: Sequence[str] = ()) -> dict[str, list[tuple]]:
    """``kind -> [(text, answer, source, extra)]`` for every label of every record.

    Texts without a ``language`` label are English (as the data's README says). Each source
    also answers the "what kind of text" question where ``SOURCE_TEXT_KIND`` knows it.
    """
    pools: dict[str, list[tuple]] = defaultdict(list)
    excluded = set(exclude_sources)
    for record in records:
        source = str(record.get("source") or "")
        text = str(record.get("text") or "").strip()
        if not text or source in excluded:
            continue
        labels = {str(k): str(v) for k, v in dict(record.get("labels") or {}).items() if v}
        labels.setdefault("language", "english")
        if source in SOURCE_TEXT_KIND and "genre" not in labels:
            labels["domain"] = SOURCE_TEXT_KIND[source]
        for name, label in labels.items():
            kind = ASPECT_KINDS.get(name)
            if kind is None or (name == "era"):  # era duplicates style with longer words
                continue
            extra = labels.get("stance_target", "") if kind == "stance" else ""
            pools[kind].append((text, answer_word(label), source, extra))
        asked = {ASPECT_KINDS.get(name) for name in labels}
        for kind, unknown in NOT_APPLICABLE_KINDS.items():
            if kind not in asked and source not in unknown:
                pools[f"{kind}:none"].append((text, NOT_APPLICABLE, source, ""))
    return pools


def _balanced(rows: list[tuple], n: int, rng: random.Random) -> list[tuple]:
    """Up to ``n`` rows, spread as evenly as possible over answers (round robin over shuffled answers)."""
    by_answer: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_answer[row[1]].append(row)
    answers = sorted(by_answer)
    rng.shuffle(answers)
    for answer in answers:
        rng.shuffle(by_answer[answer])
    picked: list[tuple] = []
    depth = 0
    while len(picked) < n and answers:
        still = []
        for answer in answers:
            bucket = by_answer[answer]
            if depth < len(bucket):
                picked.append(bucket[depth])
                still.append(answer)
                if len(picked) >= n:
                    break
        answers = still
        depth += 1
    return picked


def build_aspect_mix(records: Iterable[Mapping], total: int, *, seed: int = 13,
                     exclude_sources: Sequence[str] = (), not_applicable_share: float = 0.25) -> list[MixExample]:
    """``total`` aspect examples balanced by kind of question, then by answer inside a kind.

    Args:
        records: aspect records (``text``, ``source``, ``labels``).
        total: examples wanted (fewer when the data runs out).
        seed: sampling and phrasing choices.
        exclude_sources: sources left out entirely (validation).
        not_applicable_share: for kinds with a "does not apply" pool, the share of its quota
            given to texts the question does not apply to (answer ``none``).

    Returns:
        Examples in random order; ``group`` is ``kind:answer``.
    """
    rng = random.Random(seed)
    pools = candidates(records, exclude_sources=exclude_sources)
    kinds = [k for k in KIND_WEIGHTS if pools.get(k)]
    weight = sum(KIND_WEIGHTS[k] for k in kinds)
    mix: list[MixExample] = []
    for kind in kinds:
        quota = round(total * KIND_WEIGHTS[kind] / weight)
        none_pool = pools.get(f"{kind}:none", [])
        n_none = round(quota * not_applicable_share) if none_pool else 0
        rows = _balanced(pools[kind], quota - n_none, rng)
        rng.shuffle(none_pool)
        rows += none_pool[:n_none]
        for text, answer, source, extra in rows:
            if kind == "stance" and extra and rng.random() < 0.5:
                question = rng.choice(STANCE_WITH_TARGET).format(target=extra.rstrip(" .?"))
            else:
                question = rng.choice(QUESTIONS.get(kind) or (f"What is the {kind.replace('_', ' ')} of this text?",))
            mix.append(MixExample(text, question, answer, source, f"{kind}:{answer}"))
    rng.shuffle(mix)
    return mix


def check_questions(questions: Iterable[str], evaluation: Iterable[str]) -> None:
    """Raise ``ValueError`` naming every training question equal (case-insensitively) to an evaluation instruction."""
    clash = {q.strip().lower() for q in questions} & {e.strip().lower() for e in evaluation}
    if clash:
        raise ValueError(f"training questions equal evaluation instructions: {sorted(clash)}")


__all__ = ["ASPECT_KINDS", "KIND_WEIGHTS", "MixExample", "NOT_APPLICABLE", "NOT_APPLICABLE_KINDS", "QUESTIONS",
           "SHORT_ANSWERS", "SOURCE_TEXT_KIND", "STANCE_WITH_TARGET", "answer_word", "build_aspect_mix", "candidates",
           "check_questions"]
