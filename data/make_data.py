"""Generate the small, synthetic data sets that llmtool's examples and tests use.

Run from any directory:

    python data/make_data.py

It (re)writes, next to this script:

    corpus.txt                  plain English lines for tokenizer training / GPT-2 pretraining
    sentiment/{train,validation,test}.csv   text,label review sentences (negative/positive)
    seq2seq/{train,validation}.jsonl        {"source", "target"} sentence -> core summary pairs
    README.md                   a short description of the files

Everything comes from templates and word lists in this file, drawn with
``random.Random`` seeded from SEED, so every run writes byte-identical files.
Standard library only; no network.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

SEED = 1234
DATA_DIR = Path(__file__).resolve().parent

CORPUS_LINES = 4000
SENTIMENT_SPLITS = {"train": 2000, "validation": 400, "test": 400}
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

# Domains pair subjects with fitting adjectives; generic adjectives fit every domain.
SENTIMENT_DOMAINS = {
    "film": {
        "subjects": ["the film", "this movie", "the ending", "the acting", "the soundtrack", "the plot",
                     "the new series", "the documentary", "the main character", "the sequel"],
        "pos": ["gripping", "moving", "funny", "beautiful", "clever", "touching"],
        "neg": ["boring", "predictable", "slow", "confusing", "forgettable", "silly"],
    },
    "product": {
        "subjects": ["this phone", "the laptop", "the headset", "the charger", "this camera",
                     "the keyboard", "the vacuum cleaner", "this backpack", "the kettle", "the printer"],
        "pos": ["reliable", "sturdy", "fast", "handy", "comfortable", "well made"],
        "neg": ["flimsy", "slow", "cheap", "noisy", "faulty", "useless"],
    },
    "food": {
        "subjects": ["the pasta", "the soup", "the pizza", "this restaurant", "the dessert", "the coffee",
                     "the burger", "the salad", "the service", "the bread"],
        "pos": ["delicious", "fresh", "tasty", "friendly", "warm", "perfectly cooked"],
        "neg": ["bland", "cold", "greasy", "stale", "salty", "overcooked"],
    },
    "hotel": {
        "subjects": ["our hotel room", "the hotel", "the staff", "the breakfast", "the pool",
                     "the bed", "the view", "the location", "the apartment", "the check-in"],
        "pos": ["clean", "spacious", "quiet", "cosy", "helpful", "relaxing"],
        "neg": ["dirty", "cramped", "noisy", "rude", "dusty", "uncomfortable"],
    },
}
GENERIC_POS = ["great", "excellent", "wonderful", "fantastic", "lovely", "amazing", "superb",
               "brilliant", "pleasant", "impressive", "good", "outstanding"]
GENERIC_NEG = ["terrible", "awful", "disappointing", "poor", "horrible", "dreadful", "bad",
               "mediocre", "unpleasant", "frustrating", "annoying", "weak"]
INTENSIFIERS = ["", "", "", "very ", "really ", "truly ", "quite ", "so ", "extremely ", "incredibly "]
POS_PHRASES = ["exceeded my expectations", "was worth every penny", "made my day", "worked perfectly",
               "was a real pleasure", "is highly recommended", "did not disappoint"]
NEG_PHRASES = ["was a waste of money", "let me down", "ruined the evening", "was a complete mess",
               "stopped working quickly", "was not worth the price", "fell apart"]
POS_VERBS = ["loved", "enjoyed", "liked", "adored", "was impressed by"]
NEG_VERBS = ["hated", "disliked", "regretted buying", "was annoyed by", "was disappointed by"]
POS_OPENERS = ["Honestly,", "Overall,", "Five stars.", "Wow,", "In short,", "Happily,"]
NEG_OPENERS = ["Honestly,", "Overall,", "One star.", "Sadly,", "In short,", "Unfortunately,"]


def _adj(r: random.Random, domain: dict, polarity: str) -> str:
    generic = GENERIC_POS if polarity == "pos" else GENERIC_NEG
    return r.choice(domain[polarity] + generic)


def _opener(r: random.Random, polarity: str) -> str:
    if r.random() < 0.25:
        return r.choice(POS_OPENERS if polarity == "pos" else NEG_OPENERS) + " "
    return ""


def _plain_review(r: random.Random, polarity: str) -> str:
    """A review whose words carry its label directly."""
    d = SENTIMENT_DOMAINS[r.choice(list(SENTIMENT_DOMAINS))]
    subj, subj2 = r.sample(d["subjects"], 2)
    adj, adj2 = r.sample(d[polarity] + (GENERIC_POS if polarity == "pos" else GENERIC_NEG), 2)
    intens = r.choice(INTENSIFIERS)
    pos = polarity == "pos"
    options = [
        f"{subj} was {intens}{adj}.",
        f"{subj} is {intens}{adj} and {adj2}.",
        f"{subj} {r.choice(POS_PHRASES if pos else NEG_PHRASES)}.",
        f"I {r.choice(POS_VERBS if pos else NEG_VERBS)} {subj}, it was {intens}{adj}.",
        f"I would {'happily recommend' if pos else 'never recommend'} {subj} to anyone.",
        f"{subj} was {adj}, and {subj2} was {adj2} too.",
        f"what {a_or_an(adj)} experience, {subj} was {intens}{adj2}.",
    ]
    opener = _opener(r, polarity)
    body = r.choice(options)
    # Lower-case after a comma opener ("Honestly, the film ..."), capitalised otherwise.
    return opener + body if opener.endswith(", ") else cap(opener + cap(body))


def _negated_review(r: random.Random, polarity: str) -> str:
    """A review with negation, where the surface adjective has the opposite polarity."""
    d = SENTIMENT_DOMAINS[r.choice(list(SENTIMENT_DOMAINS))]
    subj = r.choice(d["subjects"])
    if polarity == "neg":
        adj = _adj(r, d, "pos")
        options = [
            f"{subj} was not {adj}.",
            f"{subj} was not {adj} at all.",
            f"{subj} was not as {adj} as I hoped.",
            f"I did not enjoy {subj}, it was not {adj}.",
            f"Nobody would call {subj} {adj}.",
        ]
    else:
        adj = _adj(r, d, "neg")
        options = [
            f"{subj} was not {adj} at all.",
            f"{subj} was never {adj}.",
            f"I have no complaints, {subj} was not {adj}.",
            f"Nothing about {subj} was {adj}.",
            f"I expected {subj} to be {adj}, but it was not.",
        ]
    return cap(r.choice(options))


NEGATION_RATE = 0.15


def _review(polarity: str):
    def make(r: random.Random) -> str:
        if r.random() < NEGATION_RATE:
            return _negated_review(r, polarity)
        return _plain_review(r, polarity)
    return make


def make_sentiment(out_dir: Path) -> dict[str, int]:
    rng = random.Random(SENTIMENT_SEED)
    total = sum(SENTIMENT_SPLITS.values())
    per_label = total // 2
    pos = unique_draws(rng, _review("pos"), per_label)
    neg = unique_draws(rng, _review("neg"), per_label, exclude=pos)
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
    return counts


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


def make_readme(path: Path, corpus_lines: int, corpus_vocab: int, sentiment: dict[str, int], seq2seq: dict[str, int]) -> None:
    s = sentiment
    q = seq2seq
    c = CHAT_SPLITS
    text = f"""# data/

Small synthetic data sets for llmtool's examples, recipes and tests. Everything here but `chat/` is
generated by

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
| `seq2seq/train.jsonl` | {q['train']} | JSON lines with keys `source`, `target` |
| `seq2seq/validation.jsonl` | {q['validation']} | same |
| `chat/train.jsonl` | {c['train']} | JSON lines with key `messages`: a list of `{{"role", "content"}}` |
| `chat/validation.jsonl` | {c['validation']} | same |
| `chat/test.jsonl` | {c['test']} | same |

- **corpus.txt**: template sentences about animals, weather, cooking, travel, school, city life,
  simple arithmetic ("Two plus three is five."), days and months, colours, short stories with
  names, and "The quick brown fox ..." lines. {corpus_vocab} distinct words in all, meant for
  training a tokenizer and pretraining a tiny GPT-2 on CPU.
- **sentiment/**: short product, film, restaurant and hotel review sentences. Each split is
  balanced between the two labels and shuffled; about {int(NEGATION_RATE * 100)}% of rows use negation
  ("was not good" is negative, "was not bad at all" is positive). No text appears in more
  than one split.
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
    sentiment = make_sentiment(DATA_DIR / "sentiment")
    seq2seq = make_seq2seq(DATA_DIR / "seq2seq")
    make_readme(DATA_DIR / "README.md", corpus_lines, corpus_vocab, sentiment, seq2seq)
    print(f"corpus.txt: {corpus_lines} lines, {corpus_vocab} distinct words")
    for split, n in sentiment.items():
        print(f"sentiment/{split}.csv: {n} rows")
    for split, n in seq2seq.items():
        print(f"seq2seq/{split}.jsonl: {n} rows")


if __name__ == "__main__":
    main()
