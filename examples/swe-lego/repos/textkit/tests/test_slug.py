from textkit import slugify


def test_slugify_basic():
    assert slugify("Hello, World!") == "hello-world"


def test_slugify_accents_and_sep():
    assert slugify("Crème Brûlée recipe", sep="_") == "creme_brulee_recipe"


def test_slugify_max_length():
    assert slugify("one two three", max_length=7) == "one-two"
    assert slugify("one two three", max_length=8) == "one-two"


def test_slugify_empty():
    assert slugify("!!!") == ""
