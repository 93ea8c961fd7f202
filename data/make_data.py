"""Generate the small, synthetic data sets that llmtool's examples and tests use.

Run from any directory:

    python data/make_data.py

It (re)writes, next to this script:

    corpus.txt                  plain English lines for tokenizer training / GPT-2 pretraining
    sentiment/{train,validation,test}.csv   text,label review sentences (negative/positive)
    seq2seq/{train,validation}.jsonl        {"source", "target"} sentence -> core summary pairs
    README.md                   a short description of the files

Everything comes from templates and word lists in this file (the reviews' words and phrases in
sentiment_lexicon.py), drawn with ``random.Random`` seeded from SEED, so every run writes byte-identical files.
Standard library only; no network.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import sentiment_lexicon as lex

SEED = 1234
DATA_DIR = Path(__file__).resolve().parent

CORPUS_LINES = 4000
SENTIMENT_SPLITS = {"train": 24000, "validation": 500, "test": 500}
SEQ2SEQ_SPLITS = {"train": 2000, "validation": 200}
CHAT_SPLITS = {"train": 2000, "validation": 200, "test": 200}  # written by make_chat_data.py

# Each file gets its own generator, so editing one section does not change the others.
CORPUS_SEED = SEED + 1
SENTIMENT_SEED = SEED + 2
SEQ2SEQ_SEED = SEED + 3
CHAT_SEED = SEED + 4


# --------------------------------------------------------------------------- helpers


def cap(text: str) -> str:
    """Capitalise the first letter only (keeps proper nouns further in intact)."""
    return text[:1].upper() + text[1:]


def a_or_an(word: str) -> str:
    """Return 'a word' or 'an word' for the (lower-case) words used in this file."""
    return ("an " if word[:1] in "aeio" else "a ") + word


def unique_draws(rng: random.Random, make, count: int, exclude=()) -> list:
    """Call make(rng) until `count` distinct results (not in `exclude`) exist; keep draw order."""
    seen: dict = {}
    banned = set(exclude)
    attempts = 0
    while len(seen) < count:
        attempts += 1
        if attempts > count * 200:
            raise RuntimeError(f"templates too narrow: only {len(seen)} of {count} unique items")
        item = make(rng)
        if item not in seen and item not in banned:
            seen[item] = None
    return list(seen)


# --------------------------------------------------------------------------- corpus.txt

NAMES = [
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Henry", "Iris", "Jack",
    "Kate", "Leo", "Maria", "Nina", "Oscar", "Paul", "Rosa", "Sam", "Tom", "Lucy",
    "Mia", "Noah", "Ella", "Omar", "Zoe", "Adam", "Lily", "Max", "Sara", "Tim",
]
ANIMALS = [
    "fox", "dog", "cat", "horse", "rabbit", "bird", "duck", "goat", "sheep", "cow",
    "mouse", "owl", "bear", "deer", "frog", "pig", "lion", "tiger", "wolf", "squirrel",
]
ANIMAL_PLURALS = {
    "fox": "foxes", "mouse": "mice", "sheep": "sheep", "deer": "deer", "wolf": "wolves",
}
ANIMAL_FACTS = {
    "fox": "lives in the forest", "dog": "likes to play in the park", "cat": "sleeps in the sun",
    "horse": "runs across the field", "rabbit": "eats fresh carrots", "bird": "sings in the morning",
    "duck": "swims on the pond", "goat": "climbs the rocky hill", "sheep": "eats green grass",
    "cow": "gives us milk", "mouse": "hides under the floor", "owl": "hunts at night",
    "bear": "sleeps through the winter", "deer": "walks quietly through the wood",
    "frog": "jumps into the water", "pig": "rolls in the mud", "lion": "rests in the shade",
    "tiger": "has orange and black stripes", "wolf": "howls at the moon",
    "squirrel": "gathers nuts for the winter",
}
ANIMAL_SOUNDS = {
    "dog": "barks", "cat": "meows", "cow": "moos", "duck": "quacks", "sheep": "says baa",
    "owl": "hoots", "lion": "roars", "pig": "grunts", "horse": "neighs", "frog": "croaks",
    "wolf": "howls", "bird": "chirps",
}
COLOURS = ["red", "blue", "green", "yellow", "brown", "black", "white", "grey", "orange", "purple", "pink"]
COLOUR_THINGS = [
    ("The sky", "blue"), ("Fresh grass", "green"), ("A ripe banana", "yellow"), ("Snow", "white"),
    ("A ripe tomato", "red"), ("Coal", "black"), ("An orange", "orange"), ("A plum", "purple"),
    ("The sea", "blue"), ("A lemon", "yellow"), ("Milk", "white"), ("A strawberry", "red"),
    ("A cloud on a rainy day", "grey"), ("Chocolate", "brown"), ("A leaf in spring", "green"),
]
OWNED_THINGS = ["coat", "bag", "bicycle", "hat", "door", "cup"]  # "Oscar has a red coat."
SIZE_ADJ = ["small", "big", "little", "large", "tiny", "tall", "old", "young"]
MOOD_ADJ = ["happy", "sleepy", "lazy", "quick", "clever", "quiet", "busy", "gentle", "brave", "hungry"]
PLACES = [
    "park", "library", "market", "station", "museum", "beach", "school", "garden", "bakery",
    "river", "farm", "forest", "cinema", "hospital", "harbour", "square", "zoo", "shop",
]
CITIES = [
    "London", "Paris", "Berlin", "Rome", "Madrid", "Lisbon", "Vienna", "Dublin", "Oslo",
    "Prague", "Athens", "Tokyo", "Boston", "Sydney", "Toronto", "Cairo",
]
WEATHER = [
    ("sunny", "sunglasses"), ("rainy", "an umbrella"), ("windy", "a warm jacket"),
    ("cold", "a thick scarf"), ("warm", "a bottle of water"), ("cloudy", "a light coat"),
    ("snowy", "heavy boots"), ("foggy", "a torch"), ("hot", "a sun hat"), ("stormy", "a raincoat"),
]
FOODS = [
    "bread", "soup", "rice", "pasta", "salad", "cheese", "apples", "eggs", "potatoes", "fish",
    "carrots", "onions", "tomatoes", "beans", "cake", "biscuits", "pancakes", "noodles", "honey",
]
DISHES = [
    "vegetable soup", "tomato pasta", "apple pie", "fried rice", "fresh salad", "banana bread",
    "fish stew", "potato cake", "lemon tart", "bean curry", "onion soup", "cheese pie",
]
COOK_STEPS = [
    "wash the vegetables", "chop the onions", "boil some water", "heat the pan", "add a pinch of salt",
    "stir the pot slowly", "slice the bread", "beat the eggs", "melt the butter", "taste the sauce",
    "set the table", "let it cool for ten minutes", "bake it for half an hour", "add the rice",
]
TRANSPORT = ["train", "bus", "plane", "boat", "bicycle", "car", "tram", "ferry"]
TRAVEL_THINGS = [
    "a map", "a small bag", "a camera", "a ticket", "some snacks", "a good book", "a passport",
    "a warm sweater", "a notebook", "a bottle of water",
]
SUBJECTS = ["maths", "history", "music", "science", "art", "geography", "English", "French", "reading", "sport"]
SCHOOL_ACTIONS = [
    "reads a book", "writes a short story", "draws a map", "solves a puzzle", "sings a song",
    "counts to one hundred", "paints a picture", "plants a seed", "builds a model bridge",
    "learns a new word", "asks a good question", "helps a friend",
]
CITY_SCENES = [
    "The streets are busy in the morning.", "The buses are full at eight o'clock.",
    "People wait for the tram at the corner.", "The shops open at nine.",
    "A man sells flowers near the station.", "The traffic lights turn green.",
    "Children walk to school along the main road.", "The cafe on the corner smells of coffee.",
    "Tall buildings stand along the river.", "The city is quiet late at night.",
    "A street musician plays the violin.", "The market square is full of people.",
    "Workers repair the road near the bridge.", "The lights of the city shine after dark.",
    "A cyclist rides past the bakery.", "The post office closes at five.",
]
RELATIVES = ["mother", "father", "sister", "brother", "aunt", "uncle", "grandmother", "grandfather", "friend", "teacher"]
ITEMS = [
    "a red kite", "a blue ball", "a new book", "a warm hat", "a small box", "a green bicycle",
    "a wooden boat", "a paper lantern", "a silver key", "a yellow umbrella", "an old map",
    "a toy train", "a basket of apples", "a letter", "a little puppy",
]
FEELINGS = ["happy", "tired", "surprised", "excited", "calm", "proud", "curious", "hungry", "cheerful"]
HOBBIES = [
    "playing the piano", "reading books", "drawing animals", "riding a bicycle", "swimming in the lake",
    "baking bread", "growing tomatoes", "watching the stars", "playing chess", "writing letters",
    "walking in the hills", "taking photos", "fishing by the river",
]
NUMBER_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]
ORDINALS = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth",
]
SEASONS = {
    "winter": ["December", "January", "February"], "spring": ["March", "April", "May"],
    "summer": ["June", "July", "August"], "autumn": ["September", "October", "November"],
}
DAY_ACTIVITIES = [
    "goes swimming", "visits the market", "cleans the house", "plays football", "bakes a cake",
    "calls home", "reads in the garden", "goes to the library", "cooks dinner for friends",
    "takes the dog for a long walk", "works late", "goes to the cinema",
]


def plural(animal: str) -> str:
    return ANIMAL_PLURALS.get(animal, animal + "s")


def _animals(r: random.Random) -> str:
    a = r.choice(ANIMALS)
    options = [
        f"The {r.choice(SIZE_ADJ)} {a} {ANIMAL_FACTS[a]}.",
        f"{cap(plural(a))} are {r.choice(['clever', 'gentle', 'strong', 'fast', 'shy', 'friendly'])} animals. "
        f"Most {plural(a)} {r.choice(['live in groups', 'sleep at night', 'like to eat in the morning', 'stay near water'])}.",
        f"{r.choice(NAMES)} saw {a_or_an(r.choice(MOOD_ADJ))} {a} near the {r.choice(PLACES)}.",
        f"The {a} and the {r.choice([x for x in ANIMALS if x != a])} are good friends.",
        f"There are {r.choice(NUMBER_WORDS[2:13])} {plural(a)} on the farm.",
    ]
    if a in ANIMAL_SOUNDS:
        options.append(f"The {a} {ANIMAL_SOUNDS[a]} when it is {r.choice(FEELINGS)}.")
    return r.choice(options)


def _quick_fox(r: random.Random) -> str:
    a, b = r.sample(ANIMALS, 2)
    options = [
        "The quick brown fox jumps over the lazy dog.",
        f"The quick {r.choice(COLOURS)} {a} jumps over the lazy {b}.",
        f"The quick brown {a} runs past the sleepy {b}.",
        f"A lazy {b} sleeps while the quick brown {a} jumps over it.",
        f"The quick brown fox jumps over the lazy dog near the {r.choice(PLACES)}.",
        f"The {r.choice(MOOD_ADJ)} {a} jumps over the {r.choice(SIZE_ADJ)} {b}.",
    ]
    return r.choice(options)


def _weather(r: random.Random) -> str:
    w, item = r.choice(WEATHER)
    city = r.choice(CITIES)
    name = r.choice(NAMES)
    options = [
        f"It is {w} in {city} today. {name} takes {item}.",
        f"Tomorrow will be {w} in {city}.",
        f"On {r.choice(DAYS)} the weather was {w}, so {name} stayed {r.choice(['inside', 'at home', 'near the fire'])}.",
        f"When it is {w}, {name} always takes {item}.",
        f"The weather in {city} is often {w} in {r.choice(MONTHS)}.",
        f"It was a {w} day, and the {r.choice(ANIMALS)} stayed in its home.",
    ]
    return r.choice(options)


def _cooking(r: random.Random) -> str:
    dish = r.choice(DISHES)
    name = r.choice(NAMES)
    s1, s2 = r.sample(COOK_STEPS, 2)
    options = [
        f"To make {dish}, first {s1}, then {s2}.",
        f"{name} cooks {dish} for dinner.",
        "We need {} and {} for the {}.".format(*r.sample(FOODS, 2), dish),
        f"{name} bought some {r.choice(FOODS)} at the market. The {dish} tasted very good.",
        f"The {dish} is ready. Please {s2}.",
        f"My {r.choice(RELATIVES)} makes the best {dish} in town.",
    ]
    return r.choice(options)


def _travel(r: random.Random) -> str:
    name = r.choice(NAMES)
    c1, c2 = r.sample(CITIES, 2)
    t = r.choice(TRANSPORT)
    hours = r.choice(NUMBER_WORDS[2:13])
    options = [
        f"{name} took the {t} from {c1} to {c2}.",
        f"The {t} to {c2} leaves at {hours} o'clock.",
        f"The trip from {c1} to {c2} takes {hours} hours by {t}.",
        "Before the trip, {} packed {} and {}.".format(name, *r.sample(TRAVEL_THINGS, 2)),
        f"In {c1}, {name} visited the {r.choice(PLACES)} and the old {r.choice(['castle', 'church', 'bridge', 'tower'])}.",
        f"{name} wants to travel to {c2} in {r.choice(MONTHS)}.",
    ]
    return r.choice(options)


def _school(r: random.Random) -> str:
    name = r.choice(NAMES)
    subj = r.choice(SUBJECTS)
    options = [
        f"In the {subj} lesson, {name} {r.choice(SCHOOL_ACTIONS)}.",
        f"{name} likes {subj} more than {r.choice(SUBJECTS)}.",
        f"The teacher says that {name} {r.choice(SCHOOL_ACTIONS)} every day.",
        f"On {r.choice(DAYS)} the class has {subj} in the morning.",
        f"{name} forgot the {subj} homework, so the teacher was {r.choice(['surprised', 'patient', 'kind'])}.",
        f"School starts at {r.choice(['eight', 'nine'])} o'clock, and the first lesson is {subj}.",
    ]
    return r.choice(options)


def _city(r: random.Random) -> str:
    if r.random() < 0.5:
        a, b = r.sample(CITY_SCENES, 2)
        return f"{a} {b}"
    name = r.choice(NAMES)
    city = r.choice(CITIES)
    return r.choice([
        f"{name} lives in a small flat in {city}.",
        f"{city} has a big {r.choice(PLACES)} near the centre.",
        f"{name} walks to the {r.choice(PLACES)} every {r.choice(DAYS)}.",
        f"In {city}, the {r.choice(PLACES)} is next to the {r.choice(PLACES)}.",
    ])


def _arithmetic(r: random.Random) -> str:
    op = r.choice(["plus", "minus", "times"])
    while True:
        x, y = r.randint(0, 10), r.randint(0, 10)
        z = {"plus": x + y, "minus": x - y, "times": x * y}[op]
        if 0 <= z <= 20:
            break
    fact = f"{NUMBER_WORDS[x]} {op} {NUMBER_WORDS[y]} is {NUMBER_WORDS[z]}."
    if r.random() < 0.3:
        x2, y2 = r.randint(0, 10), r.randint(0, 10)
        return f"{cap(fact)} {cap(NUMBER_WORDS[x2])} plus {NUMBER_WORDS[y2]} is {NUMBER_WORDS[x2 + y2]}."
    if r.random() < 0.2:
        return f"{r.choice(NAMES)} knows that {fact}"
    return cap(fact)


def _calendar(r: random.Random) -> str:
    i = r.randrange(7)
    m = r.randrange(12)
    season = r.choice(list(SEASONS))
    options = [
        f"{DAYS[(i + 1) % 7]} comes after {DAYS[i]}.",
        f"{DAYS[i]} comes before {DAYS[(i + 1) % 7]}.",
        f"{MONTHS[m]} is the {ORDINALS[m]} month of the year.",
        f"After {MONTHS[m]} comes {MONTHS[(m + 1) % 12]}.",
        f"{cap(season)} months are {', '.join(SEASONS[season][:2])} and {SEASONS[season][2]}.",
        f"Every {DAYS[i]}, {r.choice(NAMES)} {r.choice(DAY_ACTIVITIES)}.",
        f"There are seven days in a week and twelve months in a year.",
        f"{r.choice(NAMES)} was born in {MONTHS[m]}, in the {season}.",
    ]
    return r.choice(options)


def _colours(r: random.Random) -> str:
    thing, colour = r.choice(COLOUR_THINGS)
    c1, c2 = r.sample(COLOURS, 2)
    options = [
        f"{thing} is {colour}.",
        f"{r.choice(NAMES)} has {a_or_an(c1)} {r.choice(OWNED_THINGS)}.",
        f"If you mix {r.choice(['blue and yellow', 'red and white', 'black and white', 'red and yellow'])}, "
        f"you get a new colour.",
        f"My favourite colour is {c1}, but my {r.choice(RELATIVES)} likes {c2}.",
        f"The house has {a_or_an(c1)} door and {c2} windows.",
    ]
    return r.choice(options)


def _story(r: random.Random) -> str:
    a, b = r.sample(NAMES, 2)
    place = r.choice(PLACES)
    options = [
        f"{a} went to the {place} with {b}. They found {r.choice(ITEMS)} there.",
        f"One day, {a} met {b} at the {place}. They talked for {r.choice(NUMBER_WORDS[2:11])} hours.",
        f"{a} gave {b} {r.choice(ITEMS)}. {b} was very {r.choice(FEELINGS)}.",
        f"Once upon a time, {a} lived near the {place} with a {r.choice(MOOD_ADJ)} {r.choice(ANIMALS)}.",
        f"{a} and {b} enjoy {r.choice(HOBBIES)}.",
        f"After lunch, {a} called {b} and asked about the {place}.",
        f"{a} lost {r.choice(ITEMS)} in the {place}. Later, {b} found it.",
        f"{a}'s {r.choice(RELATIVES)} loves {r.choice(HOBBIES)}.",
        f"{a} felt {r.choice(FEELINGS)} after a long day at the {place}.",
    ]
    return r.choice(options)


CORPUS_TOPICS = [
    (_animals, 3), (_quick_fox, 1), (_weather, 2), (_cooking, 2), (_travel, 2), (_school, 2),
    (_city, 2), (_arithmetic, 2), (_calendar, 2), (_colours, 1), (_story, 3),
]


def _corpus_line(r: random.Random) -> str:
    funcs = [f for f, _ in CORPUS_TOPICS]
    weights = [w for _, w in CORPUS_TOPICS]
    first = r.choices(funcs, weights)[0](r)
    # A short follow-up sentence on most of the single-sentence lines.
    if first.count(". ") == 0 and len(first) < 75 and r.random() < 0.7:
        second = r.choices(funcs, weights)[0](r)
        if second.count(". ") == 0:
            return f"{first} {second}"
    return first


def make_corpus(path: Path) -> tuple[int, int]:
    """Write corpus.txt; return (line count, number of distinct lower-cased words)."""
    rng = random.Random(CORPUS_SEED)
    lines = unique_draws(rng, _corpus_line, CORPUS_LINES)
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    vocab = set(re.findall(r"[a-z']+", text.lower()))
    return len(lines), len(vocab)


# --------------------------------------------------------------------------- sentiment/*.csv

# Review sentences in the shapes people write them, built from the lexicon in sentiment_lexicon.py. Each review
# draws a domain (a restaurant, a phone, a film, a plumber ...) and a shape from REVIEW_SHAPES; a shape joins
# clauses, and every clause says something good or bad through an opinion word, a negated one ("wasn't bad at
# all"), a fact ("the battery is dead by lunchtime") or an experience ("I returned it after a week"). In a
# contrast the halves disagree and the label is the stronger half's, which comes last after "but" and first
# before "though", so a classifier has to read both. Reviews are drawn in pairs from one seed (review_pairs): the
# positive and the negative one share everything but what they say, so negation, contrast, questions, openers,
# context and every other word without an opinion occur under both labels alike and none is a label on its own.

MAX_REVIEW_WORDS = 35
# Plural subjects take "were"; these end in -s but are one thing.
SINGULAR_IN_S = {"series", "news", "lens", "gas", "this", "bus", "chorus", "campus", "bonus", "status", "virus"}
PLURAL_WITHOUT_S = {"staff", "people", "children", "cast", "crew"}
# Verbs of perception that fit a domain's aspects beyond feel, look and seem.
SENSES = {"restaurant": ["taste", "smell"], "cafe": ["taste", "smell"], "bar": ["taste"], "music": ["sound"],
          "headphones": ["sound"], "concert": ["sound"], "beauty": ["smell"]}
# "I've ever {verb}" after "the best phone": what one does with each domain's things.
EVER_DONE = {"place": "been to", "product": "owned", "media": "seen", "service": "dealt with",
             "software": "used", "book": "read", "music": "heard", "game": "played", "tv": "watched",
             "gadget": "bought", "delivery": "used", "course": "taken", "vehicle": "driven"}


def pick(r: random.Random, items: list):
    """random.choice with one draw whatever the list's length, so that the positive and the negative review drawn
    from one seed stay in step: same domain, thing, aspects and shape, opposite words."""
    return items[int(r.random() * len(items))]


def pick_distinct(r: random.Random, items: list, k: int) -> list:
    """k different items, in k draws (a partial Fisher-Yates shuffle)."""
    order = list(range(len(items)))
    for i in range(k):
        j = i + int(r.random() * (len(items) - i))
        order[i], order[j] = order[j], order[i]
    return [items[i] for i in order[:k]]


def other(polarity: str) -> str:
    return "neg" if polarity == "pos" else "pos"


def is_plural(noun_phrase: str) -> bool:
    if noun_phrase.startswith("this pair"):
        return False
    last = noun_phrase.split()[-1].lower()
    if last in PLURAL_WITHOUT_S:
        return True
    return last.endswith("s") and not last.endswith(("ss", "'s")) and last not in SINGULAR_IN_S


def article(word: str) -> str:
    """'a' or 'an' before a word, by its sound as far as these word lists need."""
    vowel = word[:1].lower() in "aeiou" and not word.lower().startswith(("use", "uni", "eu", "one"))
    return "an" if vowel or word.lower().startswith(("hour", "honest")) else "a"


def bare(noun_phrase: str) -> str:
    """'the battery' -> 'battery', 'our waiter' -> 'waiter'."""
    first, _, rest = noun_phrase.partition(" ")
    return rest if first in {"the", "this", "these", "our", "my", "their"} and rest else noun_phrase


def be(r: random.Random, subject: str, negated: bool = False) -> str:
    """'was', 'are', 'wasn't', 'is not' ... agreeing with the subject, in the past or the present."""
    past = r.random() < 0.6
    verb = ("were" if past else "are") if is_plural(subject) else ("was" if past else "is")
    if not negated:
        return verb
    return f"{verb}n't" if r.random() < 0.6 else f"{verb} not"


def seems(r: random.Random, subject: str, domain_name: str) -> str:
    """A verb of perception in place of 'is': 'the keyboard feels', 'the soup tasted'."""
    verbs = ["feel", "look", "seem"] + SENSES.get(domain_name, [])
    verb = pick(r, verbs)
    if r.random() < 0.5:
        return verb + "ed" if verb != "feel" else "felt"
    return verb if is_plural(subject) else verb + "s"


def pronoun(thing: str) -> str:
    return "them" if is_plural(thing) else "it"


def gradable(adjective: str) -> bool:
    return " " not in adjective or adjective.startswith(("well ", "easy ", "hard ", "good "))


def common(r: random.Random, words: list[str]) -> str:
    """One of a list ordered by use, drawn by Zipf's law: the first twice as often as the second, and so on."""
    return r.choices(words, [1 / rank for rank in range(1, len(words) + 1)])[0]


def opinion_word(r: random.Random, d: lex.Domain, polarity: str, mild: bool = False) -> str:
    if mild:
        return pick(r, lex.POS_MILD if polarity == "pos" else lex.NEG_MILD)
    x = r.random()
    if x < 0.3:
        return common(r, lex.POS_COMMON if polarity == "pos" else lex.NEG_COMMON)
    if polarity == "pos":
        return pick(r, d.pos) if x < 0.65 else pick(r, lex.POS_ADJ)
    # the mild faults too, plainly: they are conceded in praise ("a bit noisy, but") far more than they are said
    return pick(r, d.neg) if x < 0.55 else pick(r, lex.NEG_MILD + lex.NEG_NEGATABLE) if x < 0.75 else \
        pick(r, lex.NEG_ADJ)


def graded(r: random.Random, adjective: str, rate: float = 0.4) -> str:
    """The adjective, sometimes after an intensifier ('really rude')."""
    if not gradable(adjective) or r.random() >= rate:
        return adjective
    return f"{common(r, lex.COMMON_INTENSIFIERS) if r.random() < 0.5 else pick(r, lex.INTENSIFIERS)} {adjective}"


# An opinion said plainly and denied, form by form: the two reviews of a pair take the same row.
NEGATED_FORMS = [
    ("{s} {be} {w}", "{s} {not_be} {w}"),
    ("{s} {be} really {w}", "{s} {not_be} {w} at all"),
    ("{s} {be} always {w}", "{s} {be} never {w}"),
    ("{s} {be} so {w}", "{s} {not_be} that {w}"),
    ("{s} {be} very {w}", "{s} {not_be} very {w}"),
    ("{s} {be} {w} in every way", "{s} {be} not {w} in the slightest"),
    ("{s} {be} as {w} as people say", "{s} {not_be} as {w} as people say"),
    ("everything about {s} was {w}", "there was nothing {w} about {s}"),
    ("I'd call {s} {w}", "I wouldn't call {s} {w}"),
    ("{s} {be} exactly as {w} as I'd hoped", "{s} {not_be} exactly {w}"),
    ("I expected {s} to be {w}, and {p} was", "I expected {s} to be {w}, but {p} wasn't"),
    ("I found {s} really {w}", "I didn't find {s} {w} at all"),
    ("anyone would call {s} {w}", "no one would call {s} {w}"),
]


class Review:
    """One review being drawn: its domain, the thing it is about, and the clause makers that share them."""

    def __init__(self, r: random.Random, d: lex.Domain, name: str):
        self.r, self.d, self.name = r, d, name
        self.thing = pick(r, d.things)
        self.it = pronoun(self.thing)

    # -- subjects

    def aspect(self) -> str:
        x = self.r.random()
        return pick(self.r, self.d.aspects) if x < 0.7 else self.thing if x < 0.9 else "it"

    def singular_subject(self) -> str:
        """The reviewed thing when it is one thing, else 'it' or 'this' (verdicts are worded for one thing)."""
        if not is_plural(self.thing) and self.r.random() < 0.6:
            return self.thing
        return pick(self.r, ["it", "it", "this", "the whole thing", "the whole experience", "overall it"])

    def again(self) -> str:
        return pick(self.r, self.d.again).replace("{it}", self.it)

    def experience(self, polarity: str) -> str:
        """'I returned it after a week', 'we'll definitely be back'."""
        pool = (lex.POS_EXPERIENCES if polarity == "pos" else lex.NEG_EXPERIENCES)[self.d.kind]
        text = pick(self.r, pool)
        return text.replace("{it}'s", "they're" if self.it == "them" else "it's").replace(
            "{it}", "they" if self.it == "them" and text.startswith("{it}") else self.it)

    # -- clauses: each says something good ("pos") or bad ("neg") about it; lower case, no final stop

    def described(self, polarity: str, mild: bool = False) -> str:
        """'the staff were incredibly rude'."""
        subject = self.aspect()
        word = opinion_word(self.r, self.d, polarity, mild)
        if mild and polarity == "neg":  # hedged: 'a bit pricey', 'slightly cramped'
            own = pick(self.r, self.d.neg) if self.r.random() < 0.25 else word
            word = f"{pick(self.r, lex.HEDGES)} {own}"
        elif not mild:
            word = graded(self.r, word)
        verb = be(self.r, subject) if self.r.random() < 0.8 else seems(self.r, subject, self.name)
        return f"{subject} {verb} {word}"

    def negated(self, polarity: str) -> str:
        """An opinion word and its negation, as the two reviews of a pair: 'the room was clean' is positive and
        'the room wasn't clean at all' negative; 'the soup was bland' negative and 'the soup was never bland'
        positive. The word (common ones most often, as "not bad" and "not good" are in real reviews) and the form
        are drawn alike for both labels, so the pair differs in the negation alone."""
        r = self.r
        subject = self.aspect()
        praise = r.random() < 0.5  # the word praises; else it faults
        x = r.random()
        if praise:
            word = common(r, lex.POS_COMMON) if x < 0.5 else pick(r, self.d.pos) if x < 0.75 else \
                pick(r, [a for a in lex.POS_ADJ if " " not in a])
        else:  # the generic faults are said of the thing, which they all fit
            word = common(r, lex.NEG_NEGATABLE) if x < 0.75 else pick(r, self.d.neg)
            if word not in self.d.neg:
                subject = self.thing
        negate = praise == (polarity == "neg")
        forms = NEGATED_FORMS if gradable(word) and not word.startswith(("a ", "an ")) else NEGATED_FORMS[::2][:2]
        plain, denied = zip(*forms)
        p = "they" if is_plural(subject) else "it"
        return common(r, denied if negate else plain).format(
            s=subject, w=word, be=be(r, subject), not_be=be(r, subject, negated=True), p=p)

    def felt(self, polarity: str) -> str:
        """How it left one: 'I was bored', 'we left delighted', "I've never been so disappointed"."""
        r = self.r
        feeling = common(r, lex.POS_FEELINGS if polarity == "pos" else lex.NEG_FEELINGS)
        return common(r, [f"I was {feeling}", f"I was so {feeling}", f"we were {feeling}", f"I felt {feeling}",
                          f"it left me {feeling}", f"I left {feeling}", f"I've never been so {feeling}",
                          f"I came away {feeling}", f"honestly, I was {feeling}", f"I'm {feeling}"])

    def fact(self, polarity: str) -> str:
        """What happened, good or bad: the domain's own facts mostly, else its kind's or anyone's."""
        x = self.r.random()
        if x < 0.5:
            return pick(self.r, self.d.good if polarity == "pos" else self.d.bad)
        facts = lex.GOOD_FACTS if polarity == "pos" else lex.BAD_FACTS
        return pick(self.r, facts[self.d.kind] if x < 0.75 else facts["any"])

    def verdict(self, polarity: str) -> str:
        """'this phone is worth every penny', "it's a total ripoff"."""
        subject = self.singular_subject()
        verdict = pick(self.r, lex.POS_VERDICTS if polarity == "pos" else lex.NEG_VERDICTS)
        if subject in ("it", "this") and verdict.startswith("is ") and self.r.random() < 0.6:
            return f"{subject}'s {verdict[3:]}" if subject == "it" else f"this is {verdict[3:]}"
        return f"{subject} {verdict}"

    def feeling(self, polarity: str) -> str:
        """'I loved the soundtrack', "we can't stand the app"."""
        verb = pick(self.r, lex.POS_FEEL if polarity == "pos" else lex.NEG_FEEL)
        who = "we" if self.r.random() < 0.2 else "I"
        if verb.startswith("am "):
            so = "so " if self.r.random() < 0.3 and not verb.startswith("am not") else ""
            verb = ("we're " if who == "we" else "I'm ") + so + verb[3:]
            who = ""
        elif who == "we":
            verb = verb.replace("was ", "were ")
        if who == "we" or verb.startswith("we're"):
            verb = verb.replace(" I ", " we ")
        target = self.thing if self.r.random() < 0.5 else pick(self.r, self.d.aspects)
        return " ".join(filter(None, [who, verb, target]))

    def again_clause(self, polarity: str) -> str:
        """'I'd stay here again in a heartbeat', "I won't be back"."""
        forms = (["I'd {a} in a heartbeat", "I'll definitely {a}", "I can't wait to {a}",
                  "I would {a} without hesitation", "I'd happily {a}", "we'll {a} for sure", "I will {a}",
                  "I'd {a} tomorrow", "I'm already planning to {a}", "I would love to {a}",
                  "I wouldn't hesitate to {a}"]
                 if polarity == "pos" else
                 ["I won't {a}", "I'll never {a}", "I wouldn't {a}", "I would not {a} if you paid me",
                  "there's no way I'll {a}", "I doubt I'll {a}", "we won't {a}", "I won't be rushing to {a}",
                  "I'd never {a}", "you won't catch me trying to {a}"])
        return pick(self.r, forms).format(a=self.again())

    def recommend(self, polarity: str) -> str:
        thing = self.thing
        forms = (["I'd recommend {t} to anyone", "I can't recommend {t} enough", "I highly recommend {t}",
                  "I'd definitely recommend {t}", "you won't regret it", "you can't go wrong with {t}",
                  "do yourself a favour and try {t}", "I'd recommend {t} without a second thought",
                  "I already recommended {t} to three friends", "don't hesitate, {t} is worth it"]
                 if polarity == "pos" else
                 ["I wouldn't recommend {t} to anyone", "I can't recommend {t}", "I would not recommend {t}",
                  "I'd steer clear of {t}", "don't waste your money on {t}", "do yourself a favour and avoid {t}",
                  "you'd be better off elsewhere", "I wouldn't recommend {t} to my worst enemy",
                  "don't bother with {t}", "I'd think twice about {t}"])
        return pick(self.r, forms).format(t=thing)

    def so_that(self, polarity: str) -> str:
        """'the service was so slow that we left'."""
        subject = self.aspect()
        word = pick(self.r, [w for w in opinion_word_pool(self.d, polarity) if gradable(w)])
        pool = (lex.POS_CONSEQUENCES if polarity == "pos" else lex.NEG_CONSEQUENCES)
        consequence = pick(self.r, pool["any"] + pool[self.d.kind])
        that = " that" if self.r.random() < 0.4 else ""
        return f"{subject} {be(self.r, subject)} so {word}{that} {consequence}"

    def best_or_worst(self, polarity: str) -> str:
        """"it's the best phone I've ever owned"."""
        nouns = [bare(t) for t in self.d.things if len(bare(t).split()) <= 2 and not is_plural(t)]
        noun = bare(self.thing) if bare(self.thing) in nouns else pick(self.r, nouns)
        done = EVER_DONE.get(self.name, EVER_DONE[self.d.kind])
        best = "best" if polarity == "pos" else "worst"
        forms = [f"it's the {best} {noun} I've ever {done}", f"this is hands down the {best} {noun} I've {done}",
                 f"easily the {best} {noun} I've ever {done}", f"probably the {best} {noun} I've {done} in years"]
        if polarity == "pos":
            forms.append(f"I've never {done} a better {noun}")
        else:
            forms.append(f"I've never {done} a worse {noun}")
        return pick(self.r, forms)

    def expectation(self, polarity: str) -> str:
        t = self.singular_subject()
        r_word = pick(self.r, ["good", "great", "fun", "exciting", "impressive", "nice"])
        forms = ([f"{t} was much better than I expected", f"{t} was not as bad as people say",
                  f"{t} exceeded all my expectations", f"I had low expectations and {t} still impressed me",
                  f"{t} turned out better than the reviews said", f"{t} was even better than last time"]
                 if polarity == "pos" else
                 [f"{t} was not as {r_word} as I expected", f"I expected so much more from {t}",
                  f"{t} was nowhere near as good as the reviews said", f"{t} didn't live up to the hype",
                  f"{t} was worse than last time", f"{t} is not what it used to be"])
        return pick(self.r, forms)

    def value(self, polarity: str) -> str:
        """'not bad for the price', 'this kettle is way too expensive for what you get'."""
        words = lex.POS_VALUE if polarity == "pos" else lex.NEG_VALUE
        subject = pick(self.r, [self.thing, "it", "it", "this"])
        return f"{subject} {be(self.r, subject)} {pick(self.r, words)}"

    def quality(self, polarity: str) -> str:
        """'the curry was full of flavour', 'the sequel lacks any real charm'."""
        r, subject = self.r, self.aspect()
        q = pick(r, lex.QUALITIES)
        verb = "lack" if is_plural(subject) else "lacks"
        has = "have" if is_plural(subject) else "has"
        forms = ([f"{subject} {be(r, subject)} full of {q}", f"{subject} {has} so much {q}",
                  f"{subject} {be(r, subject)} packed with {q}", f"{subject} {has} {q} to spare"]
                 if polarity == "pos" else
                 [f"{subject} {verb} {q}", f"{subject} {verb} any real {q}", f"{subject} {has} no {q}",
                  f"{subject} {be(r, subject)} completely lacking in {q}", f"there's zero {q} in {subject}"])
        return pick(r, forms)

    def degree(self, polarity: str) -> str:
        """'the coffee is always fresh', 'the soup was barely warm', 'the room was way too small'."""
        r, subject = self.r, self.aspect()
        own = self.d.pos if polarity == "pos" else self.d.neg
        if polarity == "pos":
            return f"{subject} {be(r, subject)} {pick(r, lex.ALWAYS)} {pick(r, own)}"
        if r.random() < 0.4:
            return f"{subject} {be(r, subject)} {pick(r, lex.BARELY)} {pick(r, self.d.pos)}"
        return f"{subject} {be(r, subject)} {pick(r, lex.TOO + lex.ALWAYS[:2])} {pick(r, own)}"

    def believe(self, polarity: str) -> str:
        """'I can't believe how good the coffee is'."""
        r, subject = self.r, self.aspect()
        word = pick(r, [w for w in opinion_word_pool(self.d, polarity) if gradable(w) and " " not in w])
        return pick(r, [f"I can't believe how {word} {subject} {be(r, subject)}",
                         f"I still can't get over how {word} {subject} {be(r, subject)}",
                         f"you won't believe how {word} {subject} {be(r, subject)}"])

    def negated_idiom(self, polarity: str) -> str:
        """Praise said with a negation ("I couldn't put it down"), or a fault ("nobody said hello")."""
        return pick(self.r, lex.POS_NEGATED if polarity == "pos" else lex.NEG_NEGATED)

    def faint(self, polarity: str) -> str:
        """Faint praise or a faint fault, as a clause of its own polarity: "it's nothing fancy", 'a bit too
        greasy for me', 'the coffee was decent'."""
        r = self.r
        if r.random() < 0.5:
            return self.described(polarity, mild=True) + (" for me" if polarity == "neg" and r.random() < 0.3 else "")
        words = pick(r, lex.MILD_PRAISE if polarity == "pos" else lex.MILD_FAULTS)
        verb = "" if words.startswith("look") else "is " if r.random() < 0.5 else "was "
        return f"{pick(r, ['it', 'it', self.thing])} {verb}{words}"

    def surprise(self, polarity: str) -> str:
        """"I didn't expect it to be this good", 'I never thought a kettle could be this loud'."""
        r, subject = self.r, self.aspect()
        word = pick(r, [w for w in opinion_word_pool(self.d, polarity) if gradable(w) and " " not in w])
        pronoun_ = "them" if is_plural(subject) else "it"
        return pick(r, [f"I didn't expect {pronoun_ if subject == 'it' else subject} to be this {word}",
                         f"I never thought {subject} could be so {word}",
                         f"I did not expect {subject} to be so {word}",
                         f"who knew {subject} could be this {word}"])

    def even(self, polarity: str) -> str:
        """'even' that strengthens, in both labels: 'it still runs smoothly even after a year', 'even the bread was
        stale'."""
        r = self.r
        if r.random() < 0.5:
            return f"{self.fact(polarity)} {pick(r, lex.EVEN_TAILS)}"
        aspect = pick(r, self.d.aspects)
        return f"even {aspect} {be(r, aspect)} {opinion_word(r, self.d, polarity)}"

    def habit(self, polarity: str) -> str:
        """'the updates keep breaking things', 'it keeps getting better'."""
        subject = self.aspect()
        keeps = "keep" if is_plural(subject) else "keeps"
        return f"{subject} {keeps} {pick(self.r, lex.POS_HABITS if polarity == 'pos' else lex.NEG_HABITS)}"

    def clause(self, polarity: str) -> str:
        """Any clause of this polarity, drawn with CLAUSE_WEIGHTS; now and then without its subject, as notes
        are written ('it was not bad for the price' -> 'not bad for the price')."""
        makers = list(CLAUSE_WEIGHTS)
        text = getattr(self, self.r.choices(makers, [CLAUSE_WEIGHTS[m] for m in makers])[0])(polarity)
        subject = re.match(r"(it|they|everything) (is |was |are |were )?|(it's|they're|this is|this was) ", text)
        return text[subject.end():] if subject and self.r.random() < 0.35 else text

    def strong(self, polarity: str) -> str:
        """A clause that can carry the whole verdict against a milder one of the other polarity."""
        maker = pick(self.r, ["verdict", "experience", "again_clause", "recommend", "so_that", "fact",
                               "best_or_worst", "intense"])
        if maker == "intense":
            subject = self.aspect()
            word = opinion_word(self.r, self.d, polarity)
            return f"{subject} {be(self.r, subject)} {graded(self.r, word, rate=0.9)}"
        return getattr(self, maker)(polarity)

    def weak(self, polarity: str) -> str:
        """A milder clause, the half a contrast concedes: 'the room was a bit small', 'the staff were nice'."""
        r = self.r
        choice = r.random()
        if choice < (0.55 if polarity == "neg" else 0.3):  # a hedged fault, or faint praise
            return self.described(polarity, mild=True)
        if choice < 0.7:  # the domain's own, descriptive words: a generic one ("awful") would not be conceded
            subject = self.aspect()
            return f"{subject} {be(r, subject)} {pick(r, self.d.pos if polarity == 'pos' else self.d.neg)}"
        if choice < 0.85:
            return self.fact(polarity)
        aspect = pick(r, self.d.aspects)
        if polarity == "neg":
            return pick(r, [f"{self.thing} isn't cheap", f"{self.thing} isn't perfect", "it's not perfect",
                             f"it's {pick(r, lex.MILD_FAULTS)}", f"{self.thing} is {pick(r, lex.MILD_FAULTS)}",
                             "it's far from perfect", "it's not cheap", f"{aspect} could be better",
                             f"{aspect} could have been better"])
        return pick(r, [f"{self.thing} looks great", "it started well", f"{aspect} {be(r, aspect)} nice",
                         f"{self.thing} has its moments", "the idea is good", "it looked great in the photos"])


CLAUSE_WEIGHTS = {"described": 10, "negated": 4.5, "fact": 6, "verdict": 3, "feeling": 2, "experience": 2,
                  "again_clause": 1.5, "recommend": 1.5, "so_that": 1, "best_or_worst": 1, "expectation": 1,
                  "value": 1, "quality": 1, "degree": 1.5, "believe": 0.5, "habit": 1, "negated_idiom": 2,
                  "surprise": 0.7, "even": 0.7, "felt": 1.5, "faint": 1}


def opinion_word_pool(d: lex.Domain, polarity: str) -> list[str]:
    return (d.pos + lex.POS_ADJ) if polarity == "pos" else (d.neg + lex.NEG_ADJ)


# --------------------------------------------------------------------------- review shapes


def _single(v: Review, polarity: str) -> str:
    return v.clause(polarity)


def _two_alike(v: Review, polarity: str) -> str:
    a, b = v.clause(polarity), v.clause(polarity)
    join = pick(v.r, [", and ", " and ", "; ", ". ", ", plus ", ". Also, ", ". On top of that, ", ". And "])
    return a + join + (cap(b) if join.endswith(". ") else b)


def _contrast(v: Review, polarity: str) -> str:
    """Two halves that disagree. After "but" (and "however", "still" ...) the last half decides however strongly the
    first is put ("the food was great, but the service was so slow that we left"); before "though" (and "even if"
    ...) the first does, over a milder concession ("worth it, though a bit pricey")."""
    r = v.r
    weak, strong = v.weak(other(polarity)), v.strong(polarity)
    last = ["{w}, but {s}", "{w} but {s}", "{w}. But {s}", "{w}, yet {s}", "{w}. However, {s}",
            "{w}. That said, {s}", "{w}. Still, {s}", "sure, {w}, but {s}", "yes, {w}, but {s}",
            "although {w}, {s}", "even though {w}, {s}", "while {w}, {s}", "{w}, but overall {s}",
            "{w}. Overall though, {s}", "{w}... but {s}", "ok, {w}, but {s}"]
    first = ["{s}, although {w}", "{s}, even though {w}", "{s}, though {w}", "{s} even if {w}",
             "{s}. Sure, {w}, but still", "{s}, despite the fact that {w}", "{s}. Granted, {w}",
             "{s}, and that's even though {w}"]
    lucky = ["{w}. Luckily, {s}", "{w}, but thankfully {s}", "{w}. Fortunately, {s}"]
    unlucky = ["{w}. Unfortunately, {s}", "{w}, but sadly {s}", "{w}. Sadly, {s}"]
    pool = pick(r, [last, last, first, lucky if polarity == "pos" else unlucky])
    if pool is not first and r.random() < 0.5:
        weak, strong = v.described(other(polarity)) if r.random() < 0.7 else v.clause(other(polarity)), \
            v.clause(polarity)
    text = pick(r, pool).format(w=weak, s=strong)
    return re.sub(r"\. ([a-z])", lambda m: ". " + m.group(1).upper(), text)


def _short_contrast(v: Review, polarity: str) -> str:
    """'A bit pricey, but worth it.' / 'Nice enough, but not worth the money.'"""
    r = v.r
    aspect = bare(pick(r, v.d.aspects))
    if polarity == "pos":
        weak = pick(r, [f"{pick(r, lex.HEDGES)} {pick(r, lex.NEG_MILD)}", pick(r, lex.MILD_FAULTS),
                         f"{pick(r, lex.NEG_MILD)} {aspect}"])
        strong = pick(r, lex.POS_FRAGMENTS)
    else:
        weak = pick(r, [pick(r, lex.POS_MILD), f"{pick(r, lex.POS_MILD)} {aspect}", pick(r, lex.MILD_PRAISE),
                         f"lovely {aspect}"])
        strong = pick(r, lex.NEG_FRAGMENTS)
    form = pick(r, ["{w}, but {s}", "{w} but {s}", "{w}... but {s}", "{s}, even if {w}", "{s}, though {w}",
                     "{w}. Still, {s}"])
    if form.endswith("Still, {s}"):
        strong = strong.removeprefix("still ")
    return form.format(w=weak, s=strong)


def _expectations(v: Review, polarity: str) -> str:
    """What one expected, then what it was: 'I had high hopes, but ...' (the second half decides)."""
    r = v.r
    if polarity == "pos":
        before = pick(r, ["I didn't expect much", "I was skeptical at first", "I almost didn't go",
                           "I had my doubts", "the reviews were mixed", "I nearly sent it back on day one",
                           "I'm usually hard to please", "I wasn't sure about it at first"])
        join = pick(r, [", but ", " but ", ". Boy was I wrong: ", ". Turns out "])
        if r.random() < 0.2:
            before, join = pick(r, ["I had high hopes", "everyone raved about it", "my expectations were high"]), \
                pick(r, [" and ", ", and ", ". Thankfully "])
    else:
        before = pick(r, ["I had high hopes", f"I really wanted to love {v.thing}", "everyone raved about it",
                           "on paper it looked great", "the reviews were glowing", "I was so excited",
                           f"I've always liked {v.thing}", "it started so well"])
        join = pick(r, [", but ", " but ", ". Sadly ", ". Instead "])
        if r.random() < 0.2:
            before, join = pick(r, ["I didn't expect much", "my expectations were low", "I was skeptical"]), \
                pick(r, [" and ", ", and even so ", ". Still "])
    return before + join + v.strong(polarity)


def _only(v: Review, polarity: str) -> str:
    """'My only complaint is that the room was a bit small.' / 'The only good thing was the view.'"""
    r = v.r
    aspect = pick(r, v.d.aspects)
    if polarity == "pos":
        tail = pick(r, [f"my only complaint is that {v.described('neg', mild=True)}",
                         f"the only downside is that {v.described('neg', mild=True)}",
                         f"the only thing I'd change is {aspect}", f"my only gripe is {aspect}",
                         f"if I had to pick a fault, {v.described('neg', mild=True)}"])
        head = v.clause("pos") if r.random() < 0.6 else ""
    else:
        tail = pick(r, [f"the only {pick(r, ['good', 'decent', 'redeeming', 'positive'])} thing was {aspect}",
                         f"the only thing I liked was {aspect}",
                         "the best part was leaving", f"{aspect} was the only decent thing about it",
                         f"the only nice thing I can say is that {v.described('pos', mild=True)}",
                         "the only thing it's good for is the bin"])
        head = v.clause("neg") if r.random() < 0.6 else ""
    return f"{head}. {cap(tail)}" if head else tail


def _question(v: Review, polarity: str) -> str:
    r = v.r
    t = v.singular_subject()
    if r.random() < 0.45:  # the same question under both labels: the answer decides
        question = pick(r, [f"Is {t} worth it?", f"Would I {v.again()}?", f"Would I recommend {v.thing}?",
                             "Was it worth the money?", "Worth it?", f"Should you buy {v.it}?", "Verdict?",
                             "Would I do it again?"])
        answer = pick(r, ["Absolutely.", "In a heartbeat.", "Without a doubt.", "Yes, yes and yes.", "100%.",
                           "Definitely.", "Every time.", "You bet.", "Oh, absolutely!", "Without hesitation."]
                          if polarity == "pos" else
                          ["Not at all.", "No way.", "Not a chance.", "Absolutely not.", "Nope.", "Not really.",
                           "Never.", "Hard no.", "Not in a million years.", "I wouldn't."])
        text = f"{question} {answer}"
        return f"{cap(v.clause(polarity))}. {text}" if r.random() < 0.4 else text
    if polarity == "pos":
        word = pick(r, [w for w in opinion_word_pool(v.d, "pos") if " " not in w])
        forms = [f"Who knew {t} could be this {word}?", "What more could you ask for?",
                 f"Why didn't I {pick(r, ['find', 'buy', 'try', 'get'])} {v.thing} "
                 f"{pick(r, ['sooner', 'years ago', 'earlier', 'ages ago'])}?",
                 f"How is {t} this {word}?", "Can it get any better?",
                 f"Looking for {article(bare(v.thing))} {bare(v.thing)}? Look no further.",
                 "Where has this been all my life?", f"Need {article(bare(v.thing))} {bare(v.thing)}? Get this one.",
                 "What's not to love?", "Is there anything it can't do?"]
    else:
        word = pick(r, [w for w in opinion_word_pool(v.d, "neg") if " " not in w])
        aspect = pick(r, v.d.aspects)
        waits = ["so long", "forever", "three weeks", "an hour"]
        chores = ["get a refund", "cancel", "get a straight answer", "find anyone to help", "get it to work"]
        forms = [f"Why {be(r, aspect)} {aspect} so {word}?", "What were they thinking?", "How is this allowed?",
                 f"Why does {pick(r, ['it', 'everything', v.thing])} take {pick(r, waits)}?",
                 f"Why is it so hard to {pick(r, chores)}?",
                 "Who thought this was a good idea?", f"Did anyone actually test {v.thing}?",
                 f"Is it too much to ask for {bare(aspect)} that isn't {word}?", "Why did I waste my money?",
                 f"How can {t} be this {word}?", "Why does anyone go there?", "Seriously, what happened?"]
    text = pick(r, forms)
    if r.random() < 0.5:
        return f"{cap(v.clause(polarity))}. {text}" if r.random() < 0.5 else f"{text} {cap(v.clause(polarity))}"
    return text


def _exclamation(v: Review, polarity: str) -> str:
    r = v.r
    words = [w for w in opinion_word_pool(v.d, polarity) if " " not in w]
    noun = bare(pick(r, [v.thing, *v.d.aspects]))
    a, b, c = pick_distinct(r, words, 3)
    forms = [f"What {article(a)} {a} {noun}!" if not is_plural(noun) else f"What {a} {noun}!",
             f"So {a}!", f"{cap(a)}, {b} and {c}!", f"Absolutely {a}!", f"{cap(a)} {noun}!",
             f"{cap(graded(r, a, 1.0))}!!", f"{cap(a)}, {b}, {c}."]
    if polarity == "pos":
        forms += ["What a find!", "What a treat!", "What a gem!", "Love, love, love it!"]
    else:
        forms += ["What a waste!", "What a joke!", "What a rip-off!", "Never, ever again!"]
    text = pick(r, forms)
    return f"{text} {cap(v.clause(polarity))}" if r.random() < 0.5 else text


def _short(v: Review, polarity: str) -> str:
    r = v.r
    short = pick(r, lex.POS_SHORT if polarity == "pos" else lex.NEG_SHORT)
    mark = pick(r, [".", ".", "!", "!!", ""])
    if r.random() < 0.3:
        return short + mark
    if r.random() < 0.5:
        return f"{short}{mark or '.'} {cap(v.clause(polarity))}"
    return f"{cap(v.clause(polarity))}. {short}"


def _listing(v: Review, polarity: str) -> str:
    """'Great food, friendly staff, fair prices.'"""
    r = v.r
    aspects = pick_distinct(r, v.d.aspects, pick(r, [2, 3, 3]))
    words = [w for w in opinion_word_pool(v.d, polarity) if gradable(w) and not w.startswith("a ")]
    parts = [f"{pick(r, words)} {bare(a)}" for a in aspects]
    text = ", ".join(parts[:-1]) + pick(r, [" and ", ", ", ", and "]) + parts[-1]
    return text if r.random() < 0.5 else f"{text}. {cap(v.clause(polarity))}"


def _not_only(v: Review, polarity: str) -> str:
    """'Not only was the food cold, the waiter was rude too': a 'not' that flips nothing."""
    r = v.r
    a, b = pick_distinct(r, v.d.aspects, 2)
    wa, wb = (graded(r, pick(r, [w for w in opinion_word_pool(v.d, polarity) if gradable(w)])) for _ in range(2))
    verb = "were" if is_plural(a) else "was"
    return pick(r, [f"not only {verb} {a} {wa}, {b} {be(r, b)} {wb} too",
                     f"not only {verb} {a} {wa}, but {b} {be(r, b)} {wb} as well"])


def _turn(v: Review, polarity: str) -> str:
    """A review that turns: 'it started slow, but by the end I was hooked' (the later verdict decides)."""
    r = v.r
    start = pick(r, ["at first", "in the beginning", "for the first few days", "early on", "initially"])
    weak = v.weak(other(polarity))
    turn = pick(r, lex.TURNS)
    form = pick(r, ["{start} {w}, but {turn} {s}", "{w} at first, but {turn} {s}", "{start} {w}. {Turn}, {s}",
                     "{w} {start}; {turn}, {s}"])
    return form.format(start=start, w=weak, turn=turn, Turn=cap(turn), s=v.strong(polarity))


def _juxtaposed(v: Review, polarity: str) -> str:
    """'Great trailer, boring movie.': praise and fault side by side, the thing itself judged last."""
    r = v.r
    side = pick(r, [w for w in opinion_word_pool(v.d, other(polarity)) if " " not in w])
    main = pick(r, [w for w in opinion_word_pool(v.d, polarity) if " " not in w])
    aspect, thing = bare(pick(r, v.d.aspects)), bare(v.thing)
    return pick(r, [f"{side} {aspect}, {main} {thing}", f"{side} {aspect} but {main} {thing}",
                     f"{side} {aspect}, shame about the {thing}" if polarity == "neg"
                     else f"{side} {aspect}, but what {article(main)} {main} {thing}"])


STORY_MOMENTS = {
    "place": ["when we got there", "from the moment we walked in", "once we sat down", "as soon as we arrived"],
    "product": ["when it finally arrived", "as soon as I opened the box", "when I tried it", "from the first day"],
    "media": ["from the first minute", "once it got going", "from the opening scene", "right from the start"],
    "service": ["when they finally turned up", "from the first call", "from start to end", "once it got going"],
    "software": ["from the moment I installed it", "as soon as I logged in", "from the first day", "once I set it up"],
}


def _story(v: Review, polarity: str) -> str:
    """A longer account: what happened, then how two or three things were ('we booked it for our honeymoon, and
    when we got there the room was spotless, the staff were lovely and the view was stunning')."""
    r = v.r
    opening = pick(r, v.d.context + lex.NEUTRAL_CONTEXT)
    when = pick(r, STORY_MOMENTS[v.d.kind])
    parts = list(dict.fromkeys(v.described(polarity) if r.random() < 0.6 else v.fact(polarity)
                               for _ in range(pick(r, [2, 3]))))
    if len(parts) == 1:
        return f"{opening}, and {when} {parts[0]}"
    listed = ", ".join(parts[:-1]) + " and " + parts[-1]
    middle = f", {v.fact(polarity)}," if r.random() < 0.4 else ","
    return f"{opening}{middle} and {when} {listed}"


def _rating(v: Review, polarity: str) -> str:
    r = v.r
    rating = pick(r, lex.POS_RATINGS if polarity == "pos" else lex.NEG_RATINGS)
    return pick(r, [f"{rating}. {cap(v.clause(polarity))}", f"{cap(v.clause(polarity))}. {rating}.", f"{rating}."])


REVIEW_SHAPES = [(_single, 34), (_two_alike, 16), (_contrast, 18), (_short_contrast, 4), (_expectations, 5),
                 (_only, 3), (_question, 6), (_exclamation, 5), (_short, 7), (_listing, 5), (_not_only, 2),
                 (_turn, 4), (_juxtaposed, 3), (_story, 4), (_rating, 2)]


def _dress(r: random.Random, body: str, polarity: str, d: lex.Domain) -> str:
    """Context before, an opener, a closing verdict, final punctuation and case: the same odds for both labels."""
    if not body.endswith(("?", "!", ".", ")")):
        body += r.choices([".", "!", "!!", "", "..."], [70, 12, 3, 12, 3])[0]
    if r.random() < 0.15:
        context = pick(r, d.context + lex.NEUTRAL_CONTEXT)
        ended = body if body.endswith(("?", "!", ".", ")")) else body + "."
        forms = [f"{cap(context)}. {cap(body)}", f"{cap(ended)} For the record, {context}."]
        if body[:1].islower():
            forms.append(f"{cap(context)}, and {body}")
        body = pick(r, forms)
    if r.random() < 0.2:
        pool = lex.NEUTRAL_OPENERS if r.random() < 0.6 else (lex.POS_OPENERS if polarity == "pos" else lex.NEG_OPENERS)
        opener = pick(r, pool)
        if opener.endswith(",") and not re.match(r"I\b", body):
            body = body[:1].lower() + body[1:]
        body = f"{opener} {body}" if opener.endswith((",", ":")) else f"{opener} {cap(body)}"
    if r.random() < 0.1:
        ended = body if body.endswith(("?", "!", ".", ")")) else body + "."
        body = f"{ended} {pick(r, lex.POS_CLOSERS if polarity == 'pos' else lex.NEG_CLOSERS)}"
    body = cap(body)
    return body.lower() if r.random() < 0.08 else body


def review(r: random.Random, polarity: str) -> str:
    shapes, weights = zip(*REVIEW_SHAPES)
    while True:
        name = pick(r, list(lex.DOMAINS))
        v = Review(r, lex.DOMAINS[name], name)
        text = _dress(r, r.choices(shapes, weights)[0](v, polarity), polarity, v.d)
        if len(text.split()) <= MAX_REVIEW_WORDS:
            return text


def review_pairs(rng: random.Random, count: int) -> tuple[list[str], list[str]]:
    """`count` positive and `count` negative reviews, drawn in pairs from one seed each, so the two of a pair share
    their domain, subject, aspects, shape and framing and differ in what they say: every word that carries no
    opinion occurs under both labels alike. No text occurs twice, in any case (the tokenizer lower-cases)."""
    seen: set[str] = set()
    pos: list[str] = []
    neg: list[str] = []
    while len(pos) < count:
        seed = rng.getrandbits(64)
        good, bad = review(random.Random(seed), "pos"), review(random.Random(seed), "neg")
        if good.lower() not in seen and bad.lower() not in seen and good.lower() != bad.lower():
            seen |= {good.lower(), bad.lower()}
            pos.append(good)
            neg.append(bad)
    return pos, neg


NEGATION = re.compile(r"\b(not|no|never|nothing|nobody|none|nowhere|hardly|barely)\b|n't\b", re.IGNORECASE)
CONTRAST = re.compile(r"\b(but|though|although|however|yet|while|despite|still|granted)\b", re.IGNORECASE)


def lexicon_items(value) -> list[str]:
    """The phrases in one of sentiment_lexicon's values (a list, a Domain, or a dict of lists)."""
    if isinstance(value, lex.Domain):
        return [item for field in value[1:] for item in field]
    if isinstance(value, dict):
        return [item for v in value.values() for item in lexicon_items(v)]
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def make_sentiment(out_dir: Path) -> tuple[dict[str, int], dict[str, float]]:
    """Write the splits; return their row counts and the shares of training rows with a negation or contrast."""
    rng = random.Random(SENTIMENT_SEED)
    total = sum(SENTIMENT_SPLITS.values())
    per_label = total // 2
    pos, neg = review_pairs(rng, per_label)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    start = 0
    for split, n in SENTIMENT_SPLITS.items():
        half = n // 2
        rows = [(t, "positive") for t in pos[start:start + half]]
        rows += [(t, "negative") for t in neg[start:start + half]]
        start += half
        rng.shuffle(rows)
        with open(out_dir / f"{split}.csv", "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        counts[split] = len(rows)
        if split == "train":
            shares = {name: sum(bool(pattern.search(text)) for text, _ in rows) / len(rows)
                      for name, pattern in (("negation", NEGATION), ("contrast", CONTRAST))}
    return counts, shares


# --------------------------------------------------------------------------- seq2seq/*.jsonl

S2S_ANIMALS = ["fox", "dog", "cat", "horse", "rabbit", "bird", "bear", "wolf", "duck", "goat", "mouse", "owl"]
S2S_PEOPLE = ["boy", "girl", "man", "woman", "farmer", "teacher", "child", "pilot"]
S2S_AGENTS = S2S_ANIMALS + S2S_PEOPLE
S2S_THINGS = ["ball", "fence", "wall", "bridge", "tree", "car", "log", "box", "kite", "train",
              "house", "gate", "bench", "boat", "cart", "rock"]
# Each verb with the objects it makes sense with.
S2S_VERBS = {
    "jumps over": ["fence", "wall", "log", "box", "gate", "bench", "rock"] + S2S_ANIMALS,
    "runs past": S2S_THINGS + S2S_AGENTS,
    "looks at": S2S_THINGS + S2S_AGENTS,
    "chases": ["ball", "kite", "car", "train", "cart"] + S2S_ANIMALS,
    "walks around": ["tree", "house", "car", "box", "bench", "boat", "rock"] + S2S_ANIMALS,
    "sits near": S2S_THINGS + S2S_AGENTS,
    "climbs": ["tree", "wall", "fence", "gate", "rock"],
    "watches": ["train", "boat", "kite", "car"] + S2S_AGENTS,
    "follows": ["car", "train", "cart", "boat"] + S2S_AGENTS,
    "pushes": ["box", "cart", "car", "boat", "ball", "gate"],
    "paints": ["fence", "wall", "house", "boat", "gate", "bench", "box"],
    "finds": ["ball", "box", "kite", "log", "rock"] + S2S_ANIMALS,
}
S2S_INTRANS = ["sleeps", "sings", "runs", "waits", "dances", "swims", "rests", "laughs", "hides", "plays"]
S2S_ADVERBS = ["quietly", "happily", "slowly", "quickly", "loudly", "calmly"]
S2S_ADJ_SIZE = ["small", "big", "tiny", "large", "tall", "little", "old", "young"]
S2S_ADJ_COLOUR = ["red", "brown", "white", "black", "grey", "green", "blue", "yellow"]
S2S_ADJ_COAT = ["brown", "white", "black", "grey", "golden", "spotted"]  # for animals
S2S_ADJ_MOOD = ["lazy", "quick", "happy", "sleepy", "clever", "angry", "hungry", "shy"]
S2S_PLACES = ["near the river", "in the park", "behind the barn", "on the hill", "by the lake",
              "in the garden", "under the bridge", "at the farm", "in the forest", "on the beach",
              "next to the school", "in the city"]
S2S_TIMES = ["Every morning", "In the evening", "Yesterday", "On Sunday", "After lunch", "At night",
             "Later that day", "In the summer"]


def _noun_phrase(r: random.Random, noun: str) -> str:
    """'the' + up to three optional modifiers (mood, size, colour) that fit the noun + noun.

    Animals take mood, size and coat colour; people take mood and size; things take size and colour.
    """
    if noun in S2S_ANIMALS:
        pools = (S2S_ADJ_MOOD, S2S_ADJ_SIZE, S2S_ADJ_COAT)
    elif noun in S2S_PEOPLE:
        pools = (S2S_ADJ_MOOD, S2S_ADJ_SIZE)
    else:
        pools = ([a for a in S2S_ADJ_SIZE if a != "young"], S2S_ADJ_COLOUR)
    adjs = [r.choice(pool) for pool in pools if r.random() < 0.45]
    return " ".join(["the", *adjs, noun])


def _s2s_pair(r: random.Random) -> tuple[str, str]:
    agent = r.choice(S2S_AGENTS)
    place = f" {r.choice(S2S_PLACES)}" if r.random() < 0.6 else ""
    kind = r.random()
    if kind < 0.7:
        verb = r.choice(list(S2S_VERBS))
        obj = r.choice([o for o in S2S_VERBS[verb] if o != agent])
        core = f"{_noun_phrase(r, agent)} {verb} {_noun_phrase(r, obj)}"
        target = f"{agent} {verb} {obj}"
    else:
        verb = r.choice(S2S_INTRANS)
        adverb = f" {r.choice(S2S_ADVERBS)}" if r.random() < 0.5 else ""
        core = f"{_noun_phrase(r, agent)} {verb}{adverb}"
        target = f"{agent} {verb}"
    if r.random() < 0.25:
        source = f"{r.choice(S2S_TIMES)}, {core}{place}."
    else:
        source = f"{cap(core)}{place}."
    return source, target


def make_seq2seq(out_dir: Path) -> dict[str, int]:
    rng = random.Random(SEQ2SEQ_SEED)
    total = sum(SEQ2SEQ_SPLITS.values())
    pairs = unique_draws(rng, _s2s_pair, total)  # unique (source, target); sources are unique too
    assert len({s for s, _ in pairs}) == len(pairs)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    start = 0
    for split, n in SEQ2SEQ_SPLITS.items():
        chunk = pairs[start:start + n]
        start += n
        with open(out_dir / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for source, target in chunk:
                f.write(json.dumps({"source": source, "target": target}, ensure_ascii=False) + "\n")
        counts[split] = len(chunk)
    return counts


# --------------------------------------------------------------------------- README.md


def make_readme(path: Path, corpus_lines: int, corpus_vocab: int, sentiment: dict[str, int], shares: dict[str, float],
                seq2seq: dict[str, int]) -> None:
    lexicon_size = len({item for value in vars(lex).values() for item in lexicon_items(value)})
    s = sentiment
    q = seq2seq
    c = CHAT_SPLITS
    text = f"""# data/

Small synthetic data sets for llmtool's examples, recipes and tests. Everything here but `chat/` and the
hand-written `sentiment/*_natural.csv` is generated by

    python data/make_data.py

and `chat/` by `python data/make_chat_data.py` (see below); both use the standard library only, no network,
and `random.Random` seeded from `SEED = {SEED}`, so each run writes byte-identical files. Edit the scripts,
not the generated files.

| File | Rows | Columns / format |
|------|------|------------------|
| `corpus.txt` | {corpus_lines} lines | plain UTF-8 English, one or two short sentences per line |
| `sentiment/train.csv` | {s['train']} | CSV, header `text,label`; label is `negative` or `positive` |
| `sentiment/validation.csv` | {s['validation']} | same |
| `sentiment/test.csv` | {s['test']} | same |
| `sentiment/dev_natural.csv` | 120 | same; written by hand, not generated (see `sentiment/NATURAL.md`) |
| `sentiment/test_natural.csv` | 240 | same; written by hand, for reporting only |
| `seq2seq/train.jsonl` | {q['train']} | JSON lines with keys `source`, `target` |
| `seq2seq/validation.jsonl` | {q['validation']} | same |
| `chat/train.jsonl` | {c['train']} | JSON lines with key `messages`: a list of `{{"role", "content"}}` |
| `chat/validation.jsonl` | {c['validation']} | same |
| `chat/test.jsonl` | {c['test']} | same |

- **corpus.txt**: template sentences about animals, weather, cooking, travel, school, city life,
  simple arithmetic ("Two plus three is five."), days and months, colours, short stories with
  names, and "The quick brown fox ..." lines. {corpus_vocab} distinct words in all, meant for
  training a tokenizer and pretraining a tiny GPT-2 on CPU.
- **sentiment/**: reviews of the kinds people write, about {len(lex.DOMAINS)} kinds of thing (restaurants, cafes, hotels,
  flights, films, series, books, albums, concerts, phones, laptops, headphones, shoes, clothes, kitchen gear,
  furniture, apps, software, games, deliveries, customer service, courses, gyms, salons, plumbers ...), built from
  the {lexicon_size} words and phrases of `sentiment_lexicon.py`. Each review draws a domain and a shape: one or two
  clauses that agree; a contrast whose halves disagree, labelled by the stronger half, which comes last after "but"
  and first before "though" ("A bit pricey, but worth it." is positive, "The food was great, but the service was
  so slow that we left." negative); a review that turns ("slow at first, but by the end ..."); a question answered
  either way ("Worth it? Not at all."); an exclamation, a rating, a short verdict ("Meh.", "Total ripoff.") or a
  longer account of what happened. A clause praises or faults through an opinion word (with intensifiers and
  hedges), a negated one ("wasn't bad at all" and "never boring" are positive, "not worth it" and "nothing
  special" negative), a fact ("the battery is dead by lunchtime") or a first-person experience ("I returned it
  after a week", "we'll definitely be back"). Reviews come in pairs drawn from one seed, a positive and a
  negative one with the same domain, subject, aspects, shape and framing, so every word that carries no opinion
  occurs under both labels alike; a negated clause is paired with the same word said plainly ("the room wasn't
  clean at all" / "the room was clean"). {shares['negation']:.0%} of the training rows hold a negation and
  {shares['contrast']:.0%} a contrast word. Rows are 1 to {MAX_REVIEW_WORDS} words, in varied case and punctuation;
  each split is balanced between the labels and shuffled, and no text appears twice, in any case. Validation
  and test come from the same generator, so they measure how well a model learned it, not how it reads reviews
  people write: `dev_natural.csv` and `test_natural.csv` do that (`sentiment/NATURAL.md` says what each may be
  used for; `make demo` reports its classifier on `test_natural.csv`).
- **seq2seq/**: text-to-text pairs for a tiny T5. `source` is a sentence with optional
  adjectives, adverbs, time and place phrases; `target` is its core,
  e.g. "The lazy small brown fox jumps over the sleepy dog near the river." -> "fox jumps over dog".
  No source appears in both splits.

`llmtool/assets/eval.txt` (150 lines, shipped inside the package as the default text of `llmtool eval`) is
written by `python data/make_eval_text.py`: the corpus templates drawn with their own seed, keeping only lines
none of whose sentences occurs in `corpus.txt`, so a model pretrained on the corpus has not seen them.

## chat/

Conversations for chat fine-tuning of the small GPT-2 pretrained on `corpus.txt`, written by

    python data/make_chat_data.py

(run it after `make_data.py`, whose word lists and sentence templates it imports, so the words are the
corpus's; `python data/make_chat_data.py OUT_DIR` writes the same files elsewhere). Each line is one
conversation, `{{"messages": [{{"role": "system" | "user" | "assistant", "content": "..."}}, ...]}}`: an
optional system turn, then user and assistant turns in turn, ending with the assistant. Every assistant
answer is a single word, so a model is scored by exact match on it. Every split holds the four kinds in
the same fixed shares (`KIND_SHARES` in the script):

- **arithmetic**: "What is three plus four?" -> "seven" ("How much is ..." too), single-digit operands,
  `plus` or `minus`, never below zero; numbers are words, as in the corpus ("Three plus four is seven.").
- **fact**: a corpus sentence and a question about it in one user turn, answered by copying a word:
  "Nina has a red bicycle. What colour is Nina's bicycle?" -> "red"; also weather, travel ("Which city did
  Mia travel to?"), animals on the farm ("How many sheep ...?") and birth months.
- **system_fact**: the same, with the sentence in the system turn and the question in the user turn.
- **multi_turn**: two exchanges, each answer checkable: two facts up front, asked about one per turn
  (the second answer comes from the earlier user turn), or two sums.

Conversations of the other kinds open with one of three fixed system prompts ("You are a helpful
assistant.") about a third of the time (half, for the sums, which have few other ways to differ). No conversation occurs twice, within a split or across them (the 155
single-digit sums do recur, with other wording or system prompts). A `prompt`/`completion` pair is the same
as a conversation of one user turn (the prompt) and one assistant turn (the completion).
"""
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- main


def main() -> None:
    corpus_lines, corpus_vocab = make_corpus(DATA_DIR / "corpus.txt")
    sentiment, shares = make_sentiment(DATA_DIR / "sentiment")
    seq2seq = make_seq2seq(DATA_DIR / "seq2seq")
    make_readme(DATA_DIR / "README.md", corpus_lines, corpus_vocab, sentiment, shares, seq2seq)
    print(f"corpus.txt: {corpus_lines} lines, {corpus_vocab} distinct words")
    for split, n in sentiment.items():
        print(f"sentiment/{split}.csv: {n} rows")
    for split, n in seq2seq.items():
        print(f"seq2seq/{split}.jsonl: {n} rows")


if __name__ == "__main__":
    main()
