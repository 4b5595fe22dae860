from textkit import camel_to_snake, snake_to_camel, title_case


def test_camel_to_snake_simple():
    assert camel_to_snake("fooBarBaz") == "foo_bar_baz"


def test_camel_to_snake_acronym():
    assert camel_to_snake("HTTPServer") == "http_server"
    assert camel_to_snake("getHTTPResponse") == "get_http_response"


def test_camel_to_snake_already_snake():
    assert camel_to_snake("foo_bar") == "foo_bar"


def test_snake_to_camel():
    assert snake_to_camel("foo_bar_baz") == "fooBarBaz"
    assert snake_to_camel("foo_bar", upper_first=True) == "FooBar"
    assert snake_to_camel("__") == ""


def test_title_case():
    assert title_case("the lord of the rings") == "The Lord of the Rings"
    assert title_case("a tale OF two cities") == "A Tale of Two Cities"
    assert title_case("end in the") == "End in The"
