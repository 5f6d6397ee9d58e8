#!/usr/bin/env python3
"""Writes the WAF's benign request corpus, requests.jsonl: ordinary API traffic a web ACL must let
through (product catalogues, searches, reviews in several languages, addresses, code snippets,
prices and measurements, base64 blobs, JWTs, prose with SQL words and punctuation).

Every text here is written for this corpus; nothing comes from an attack corpus. The output is a
pure function of SEED: `generate.py --check` fails when requests.jsonl is not what this script
writes, so the file in the repository and the script cannot drift apart.

One JSON object a line: method, path, query (the raw query string, already URL-encoded, without
'?'), headers (an object; Host and Content-Length are the replayer's) and body (text).

usage: generate.py [--check] [OUTPUT]
"""
import base64
import hashlib
import json
import pathlib
import random
import sys
import urllib.parse

SEED = 20261202
HERE = pathlib.Path(__file__).resolve().parent

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "ShopApp/4.12.1 (iOS 18.1; iPhone15,2)",
    "ShopApp/4.12.0 (Android 14; SM-S918B)",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Go-http-client/2.0",
    "axios/1.7.7",
    "PostmanRuntime/7.42.0",
]

FIRST = ["Anna", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiroshi", "Ines", "Jakub",
         "Kofi", "Léa", "Mateo", "Nora", "Oisín", "Priya", "Quentin", "Rosa", "Seán", "Tomás",
         "Ulla", "Vikram", "Wei", "Ximena", "Yusuf", "Zoë", "Siobhán", "Jürgen", "Ayşe", "Bjørn"]
LAST = ["O'Brien", "O'Neil", "D'Angelo", "McDonald", "Smith", "Müller", "García", "Rossi",
        "Nguyen", "Kowalski", "Andersson", "Yamamoto", "Dubois", "van der Berg", "Al-Sayed",
        "Ó Súilleabháin", "N'Diaye", "D'Souza", "Fitzgerald-Jones", "Da Silva", "L'Estrange",
        "Chen", "Okafor", "Ivanova", "Papadopoulos", "Schröder", "St. John", "de la Cruz"]

STREETS = ["O'Connell St.", "Main Street", "Rue de l'Église", "Königsallee", "Calle Mayor",
           "Via dell'Indipendenza", "Baker Street", "Avenida Paulista", "Nørrebrogade",
           "Elm St. (rear entrance)", "King's Road", "St. Mary's Lane", "Queen's Gate",
           "Rua 25 de Março", "Church Rd", "Old Mill Ln", "Route de l'Aéroport"]
CITIES = [("Dublin", "D01 F5P2", "IE"), ("London", "SW7 2RL", "GB"), ("Paris", "75011", "FR"),
          ("Düsseldorf", "40212", "DE"), ("Madrid", "28013", "ES"), ("Bologna", "40121", "IT"),
          ("São Paulo", "01310-100", "BR"), ("København N", "2200", "DK"),
          ("Springfield", "62704", "US"), ("Toronto", "M5V 2T6", "CA"), ("Tokyo", "150-0002", "JP"),
          ("Kraków", "31-042", "PL"), ("Cork", "T12 X8N4", "IE"), ("Lyon", "69002", "FR")]
UNITS = ["Apt 4B", "Flat 2", "Unit #12", "Suite 300", "c/o Reception", "Floor 3 -- ring twice",
         "Building 'C'", "2nd floor, door on the left", "Apt. 7 (buzz 07)", "", "", ""]

PRODUCTS = [
    ("Samsung 55\" QLED TV", "tv", "Crystal-clear 4K; 55\" diagonal, 120 Hz."),
    ("Dell 27\" monitor (U2723QE)", "monitors", "27\" IPS, USB-C hub; height-adjustable stand."),
    ("MacBook Air 13.6\"", "laptops", "M3 chip, 16 GB; weighs 1.24 kg (2.7 lb)."),
    ("Lodge 12\" cast-iron skillet", "kitchen", "Pre-seasoned; 12\" across, 2\" deep."),
    ("Pine board 2x4, 8' long", "lumber", "Kiln-dried; actual size 1.5\" x 3.5\" x 96\"."),
    ("Garden hose 50'", "garden", "5/8\" diameter, brass fittings; kink-free."),
    ("Yoga mat 72\" x 24\"", "fitness", "1/4\" thick; non-slip on both sides."),
    ("Ceiling fan 52\"", "home", "3 speeds, reversible; fits rooms up to 15' x 15'."),
    ("Bookshelf 6' tall", "furniture", "5 shelves; 71\" H x 31.5\" W x 11.8\" D."),
    ("Men's jeans 32\" x 34\"", "clothing", "Slim fit; inseam 34\", waist 32\"."),
    ("Women's trail runner", "shoes", "Sizes 5-11; 8 mm drop; 'grippy' outsole."),
    ("Kid's bike 20\"", "bikes", "For riders 4'0\" to 4'10\"; coaster brake."),
    ("Mannequin, male, 6'1\"", "retail", "Chest 38\", waist 31\"; detachable arms."),
    ("Drill bit set (1/16\" - 1/2\")", "tools", "29 pieces; titanium-coated."),
    ("Picture frame 8\" x 10\"", "decor", "Matted to 5\" x 7\"; glass front."),
    ("Espresso machine", "kitchen", "15 bar; 1.8 L tank; 'barista' steam wand."),
    ("Wool throw 50\" x 60\"", "home", "100% merino; dry clean only."),
    ("LED strip 16.4'", "lighting", "5 m / 16.4'; 300 LEDs; cut every 2\"."),
    ("Trampoline 14'", "outdoor", "Safety net 6' high; max load 330 lb."),
    ("Desk 60\" x 30\"", "furniture", "Sit/stand; 28\"-47\" height range."),
    ("Table saw 10\"", "tools", "Rip capacity 25\"; 15 A motor."),
    ("Rug 5' x 8'", "home", "Low pile; 'Union Jack' pattern."),
    ("Select-fit dog harness", "pets", "Select the size from the chart: S (13\"-18\"), M, L."),
    ("Union Station poster 18\"x24\"", "decor", "Vintage print of Union Station, 1926."),
    ("Drop-leaf table", "furniture", "Seats 2--4; leaves drop to 12\"."),
    ("Table tennis set", "sports", "4 paddles, 8 balls; net 72\" wide."),
]
CATEGORIES = sorted({p[1] for p in PRODUCTS})
COLOURS = ["black", "white", "navy", "forest green", "rosé", "off-white", "slate grey", "red"]

SEARCHES = [
    "select the best one from our list", "order by price", "how to delete my account",
    "union station tickets", "drop shipping suppliers", "table for 2 tonight",
    "insert coin arcade machine", "where is my order?", "O'Reilly books", "rock 'n' roll vinyl",
    "update billing address", "create account", "group by size", "having trouble logging in",
    "from paris to lyon", "into the woods dvd", "where to buy 12\" pizza stone",
    "5'11\" mens jeans length", "27\" monitor vs 32\"", "sleep mask", "benchmark results",
    "char broil grill", "user manual", "exec chair leather", "shutdown timer app",
    "truncate long titles css", "is it gluten free?", "like new condition", "all in one printer",
    "not included batteries", "null pointer exception java", "true wireless earbuds",
    "drop table top for picnic", "select comfort mattress", "delete old photos", "join waitlist",
    "between 10 and 20 dollars", "1 or 2 bedroom apartments", "and or but conjunctions",
    "women's shoes size 8", "kids' toys 3+", "l'oréal shampoo", "men's 34\" belt",
    "caf\u00e9 au lait mug", "bananas -- organic", "\"exact phrase\" search", "tom's diner",
    "it's a wonderful life blu-ray", "union jack flag 3'x5'", "version 2.0 release notes",
    "order history 2024", "where's the nearest store", "ascii art generator",
    "concat pdf files", "count down timer", "substring of a string python",
    "lower back pain chair", "upper east side brunch", "left handed scissors",
    "replace filter cartridge", "case for iphone 16", "desc vs asc", "limit order vs market order",
    "offset printing services", "declare variable javascript", "values of the company",
    "into outfile meaning", "wait for delivery", "sleeping bag -20", "nike air max 90 '",
    "1/2\" plywood", "6' x 4' shed", "tv 65\"", "ring size 7 1/2", "c++ primer",
    "what's new", "q&a", "50% off", "#hashtag", "@mention", "foo=bar", "a+b", "x-y", "re:invent",
]

EN_REVIEWS = [
    "Great value -- would buy again.", "It's exactly as described; the 12\" size is perfect.",
    "Select the best one from our list? I'd pick this one, hands down.",
    "Arrived late (3 days), but it's fine.", "Don't buy the cheaper one -- it broke in a week.",
    "My son's 5'11\" and it fits him well.", "Order by 2pm and it ships the same day!",
    "Please delete my previous review; this one's updated.", "Works with the 27\" model too.",
    "I had to drop the price alert because it sold out.", "Five stars; the union of style and comfort.",
    "Where's the manual? It wasn't in the box.", "Update: after 6 months it's still going strong.",
    "Not bad, not great. 3/5.", "The colour is more 'navy' than 'black'.",
    "We ordered 2 and returned 1 -- too big for our 8' x 10' room.",
    "Insert the batteries (AA x 4) before you start.", "If you're 6'2\" or taller, size up.",
    "1 star -- the box was crushed; the item inside was OK though.",
    "Sleep quality improved; my wife says I don't snore anymore.",
    "Table top is 30\" x 48\", which is a bit smaller than I hoped.",
    "Between this and the Pro version, I'd choose this one.",
    "Got it for $49.99 on sale (was $79.99).", "It's the \"real deal\" -- not a knock-off.",
    "Love it!!! :-)", "Meh... it's OK; you get what you pay for.", "10/10 would recommend.",
    "Customer service replied within 24h; they're great.",
    "Drop-in replacement for my old one; took 5 minutes.", "Select size 'M' if you're between sizes.",
    "Wait for a sale; it drops to $30 regularly.", "Can't say enough good things about it.",
    "The 'quick start' guide is useless -- watch the video instead.",
    "Shipping: 2 days. Packaging: excellent. Product: as advertised.",
    "My 3-year-old loves it; it's survived a lot of drops.", "Cons: no USB-C; pros: everything else.",
]
OTHER_REVIEWS = {
    "fr": ["C'est génial, je recommande !", "L'été dernier j'en ai acheté deux ; aucun souci.",
           "Livraison rapide, produit conforme à l'annonce.", "Qualité/prix : imbattable.",
           "Je l'utilise tous les jours depuis l'an dernier.", "Un peu cher, mais ça vaut le coup.",
           "Aujourd'hui j'ai reçu la commande -- parfait.", "Taille un peu petite ; prenez la taille au-dessus."],
    "de": ["Sehr gute Qualität, schnelle Lieferung.", "Für den Preis völlig in Ordnung.",
           "Die Größe passt nicht – leider zurückgeschickt.", "Hält, was es verspricht!",
           "Würde ich wieder kaufen; 5 Sterne.", "Anleitung auf Englisch, aber verständlich."],
    "es": ["¡Me encanta! Llegó antes de lo previsto.", "Buena relación calidad-precio.",
           "No es lo que esperaba, pero sirve.", "La talla es más pequeña de lo normal.",
           "¿Alguien sabe si es compatible con el modelo anterior?", "Lo recomiendo al 100 %."],
    "it": ["Ottimo prodotto, consegna veloce.", "Dell'anno scorso è il miglior acquisto.",
           "Non male, ma l'imballaggio era rovinato.", "Qualità eccellente; lo ricomprerei.",
           "E' arrivato in due giorni.", "Un po' rumoroso, però funziona bene."],
    "pt": ["Produto excelente, chegou rápido.", "Não gostei da cor, mas a qualidade é boa.",
           "Vale cada centavo!", "O tamanho é um pouco grande; peça um número menor."],
    "nl": ["Prima product, snel geleverd.", "Niet wat ik verwachtte, maar 't werkt.",
           "Zou ik zeker weer kopen!", "De maat valt klein uit."],
    "pl": ["Świetny produkt, polecam!", "Jakość w porządku, dostawa szybka.",
           "Rozmiar za mały – musiałem zwrócić.", "Za tę cenę – rewelacja."],
    "sv": ["Bra kvalitet och snabb leverans.", "Passar perfekt, rekommenderas!",
           "Lite dyr men värd pengarna."],
    "tr": ["Ürün çok güzel, hızlı kargo.", "Fiyatına göre gayet iyi.", "Bedeni biraz küçük."],
    "ru": ["Отличный товар, рекомендую!", "Доставка быстрая, качество хорошее.",
           "Размер маловат – берите на размер больше.", "За свои деньги – супер."],
    "ja": ["とても良い商品です。また買いたいです。", "サイズが少し小さかったです。",
           "配送が早くて助かりました！", "値段の割に品質が良い。"],
    "zh": ["质量很好，物流很快。", "尺寸偏小，建议买大一号。", "性价比高，推荐购买！"],
    "ko": ["배송이 빨라요. 만족합니다!", "사이즈가 조금 작아요.", "가격 대비 품질이 좋아요."],
    "ar": ["منتج ممتاز وسريع التوصيل.", "الجودة جيدة مقابل السعر.", "المقاس صغير قليلاً."],
    "hi": ["बहुत अच्छा उत्पाद है।", "डिलीवरी जल्दी हुई, धन्यवाद!"],
    "el": ["Πολύ καλό προϊόν, γρήγορη παράδοση.", "Το μέγεθος είναι λίγο μικρό."],
    "ga": ["Táirge iontach, seachadadh tapa.", "Tá sé go maith ach beagán daor."],
}

PROSE = [
    "Please delete my account and all of my data from your list.",
    "Can you select the best one from our list and send it over?",
    "I want to order by price, then by rating -- is that possible?",
    "Drop me a line when the 12\" version is back in stock.",
    "Update: I've moved; please update my address before you ship.",
    "Where is my order? It's been 5 days -- tracking says 'in transit'.",
    "Union members get 10% off; do you honour that?",
    "Insert a note saying \"Happy birthday, Mum!\" please.",
    "Between 9 and 5 on weekdays works best for delivery.",
    "It's 5 o'clock; where's the driver?",
    "1 or 2 of the items were missing from the box.",
    "I'd like to create a new account for my business -- same email?",
    "Please don't -- I repeat, don't -- leave it with the neighbour.",
    "The 'select all' checkbox doesn't work on the orders page.",
    "Group my orders by month in the export, if you can.",
    "I ordered the 27\" monitor but got the 24\"; please exchange.",
    "Is there a limit on how many I can order? I need 30.",
    "Having issues with the app: it logs me out every time I update.",
    "Replace the strap; mine snapped after 2 weeks.",
    "Count me in for the beta! My handle is @jo_smith.",
    "My height is 5'11\" and my weight 180 lb -- which size?",
    "Drop-off at the back door, please -- the front one's stuck.",
    "We're a table of 6 -- 7:30pm on Friday, if there's room.",
    "Sleep mode isn't working after the latest update (v2.3.1).",
    "Truncate? No -- I want the full description shown.",
    "I select 'express' at checkout but it charges standard; why?",
    "Our union (Local 1199) would like a bulk order quote.",
    "Delete the duplicate order #48213, and keep #48214.",
    "Set the default to 'metric' -- I don't use inches or feet.",
    "Declare the gift value as $25 for customs, please.",
    "Is it true that 1 = 1 in your loyalty points scheme?",
    "From now on, send invoices to accounts@example.org.",
    "Please execute the refund -- it's been 2 weeks.",
    "Having read the FAQ, I still don't know where to find my invoice.",
    "The desc says 'waterproof' but the box says 'water-resistant'.",
    "Not happy. The 'new' item had scratches and the seal was broken.",
    "Exec summary: the product is great; delivery was not.",
    "Or should I just cancel and re-order? Either works.",
    "I'm not sure -- is it 1/2\" or 3/4\" thick?",
    "The order by date filter is broken on Safari 18.",
    "Select 'Other' and write 'gift' in the box -- done.",
    "Where do I drop the return? Any post office, or only yours?",
    "In case it helps: the serial is SN-2024-00817-B.",
    "Shutdown happens after ~10 min; is that a setting?",
    "Why is 'Union Square' listed twice in store locations?",
    "And, or rather but, the lid doesn't close properly.",
    "Thanks -- that's all from me; have a good one!",
    "Re: order 7731 -- no, I didn't authorise the second charge.",
    "Can't log in; it says 'user not found' but I'm sure it's right.",
    "Delete from my cart the item I added twice, thanks.",
    "I'll take the 'red' one, or the 'navy' one if red's gone.",
    "Hi team -- the 'where' field on the event form is required but hidden.",
    "Who's the best person to talk to about a partnership?",
    "Could you add a \"sort by newest\" option? Order by date would be great.",
    "She's 4'10\" -- will the 20\" bike fit?",
    "The 2x4s were 7' 11\" not 8' as advertised.",
    "Is the 50\" or the 55\" better for a 12' x 14' room?",
]

CODE = [
    ("python", "def total(items):\n    return sum(i['price'] * i['qty'] for i in items)\n"),
    ("python", "# Retry with backoff\nfor attempt in range(3):\n    try:\n        r = session.get(url, "
               "timeout=5)\n        break\n    except Timeout:\n        time.sleep(2 ** attempt)\n"),
    ("python", "if user.is_admin or user.id == owner_id:\n    allow = True  # owners may edit\n"),
    ("javascript", "const total = items.reduce((acc, it) => acc + it.price * it.qty, 0);\n"),
    ("javascript", "// format a price\nconst fmt = new Intl.NumberFormat('en-US', { style: 'currency', "
                   "currency: 'USD' });\nconsole.log(fmt.format(19.99));\n"),
    ("javascript", "if (a === b || (c && !d)) { return 'ok'; }\n"),
    ("typescript", "interface Order { id: string; total: number; note?: string }\n"),
    ("go", "func Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}\n"),
    ("go", "for i := 0; i < len(xs); i++ {\n\tsum += xs[i] // no overflow check\n}\n"),
    ("c", "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 1 + 1); return 0; }\n"),
    ("c", "while (n-- > 0) { *dst++ = *src++; }\n"),
    ("rust", "fn main() {\n    let v: Vec<i32> = (1..=10).filter(|x| x % 2 == 0).collect();\n"
             "    println!(\"{:?}\", v);\n}\n"),
    ("shell", "ls -la | grep '.txt' | wc -l\n"),
    ("shell", "tar --exclude='*.tmp' -czf backup.tar.gz ./data  # nightly\n"),
    ("shell", "git log --oneline --since='2 weeks ago' -- src/\n"),
    ("yaml", "services:\n  web:\n    image: nginx:1.27\n    ports: ['8080:80']  # local only\n"),
    ("json", "{\"name\": \"widget\", \"tags\": [\"a\", \"b\"], \"price\": 9.5}"),
    ("css", ".btn { color: #fff; background: #0a58ca; } /* primary */\n"),
    ("html", "<p>Hello, <b>world</b>!</p>\n<a href=\"https://example.com/docs\">Docs</a>\n"),
    ("markdown", "## Install\n\n```\npip install --upgrade example\n```\n\n- works on 3.9+\n"),
    ("ruby", "puts items.map { |i| i[:name] }.join(', ')\n"),
    ("java", "List<String> names = users.stream().map(User::getName).toList();\n"),
    ("kotlin", "val ok = list.any { it.price > 10.0 && it.inStock }\n"),
    ("lua", "-- sum a table\nlocal s = 0\nfor _, v in ipairs(t) do s = s + v end\n"),
    ("haskell", "main = print (foldr (+) 0 [1..10]) -- 55\n"),
    ("regex", "^[A-Z]{2}\\d{2}[A-Z0-9]{1,30}$"),
    ("ini-like", "timeout = 30\nretries = 3 ; seconds between\n"),
]

GRAPHQL = [
    "query { product(id: \"%s\") { name price { amount currency } } }",
    "query Search($q: String!) { search(query: $q, first: 10) { edges { node { id name } } } }",
    "mutation { addToCart(productId: \"%s\", quantity: 2) { cart { id total } } }",
    "query { orders(orderBy: {field: CREATED_AT, direction: DESC}, first: 5) { nodes { id } } }",
    "mutation UpdateAddress($input: AddressInput!) { updateAddress(input: $input) { ok } }",
]

ODATA_FILTERS = [
    "Name eq 'O''Brien'", "Price lt 20 and Category eq 'books'", "startswith(Name, 'Sam')",
    "Rating ge 4 or Featured eq true", "contains(Description, '12\"')", "City eq 'L''Aquila'",
    "year(CreatedAt) eq 2024", "Status ne 'deleted'", "Price gt 10.5 and Price le 99.99",
]


def jwt(rng):
    def b64url(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    claims = {"sub": str(rng.randrange(10 ** 6, 10 ** 7)), "name": name(rng),
              "iat": 1733000000 + rng.randrange(10 ** 6), "scope": rng.choice(
                  ["read:orders write:orders", "profile email", "admin:read"])}
    sig = bytes(rng.randrange(256) for _ in range(32 if header["alg"] == "HS256" else 64))
    return ".".join([b64url(json.dumps(header, separators=(",", ":")).encode()),
                     b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()),
                     b64url(sig)])


def blob(rng, lo, hi):
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.randrange(lo, hi)))).decode()


def uuid(rng):
    h = "%032x" % rng.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def name(rng):
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def email(rng):
    first = rng.choice(["anna", "ben", "chloe", "dmitri", "jo.smith", "k.okafor", "p+shop"])
    return f"{first}{rng.randrange(100)}@{rng.choice(['example.com', 'mail.example.org', 'shop.test'])}"


def headers(rng, content_type=None, auth=True):
    h = {"User-Agent": rng.choice(USER_AGENTS),
         "Accept": rng.choice(["application/json", "*/*", "application/json, text/plain, */*"])}
    if rng.random() < 0.5:
        h["Accept-Language"] = rng.choice(["en-US,en;q=0.9", "fr-FR,fr;q=0.8,en;q=0.5",
                                           "de-DE,de;q=0.9", "ja,en;q=0.7", "es-ES,es;q=0.9"])
    if auth and rng.random() < 0.45:
        h["Authorization"] = "Bearer " + jwt(rng)
    if rng.random() < 0.3:
        h["Cookie"] = "; ".join([f"sid={blob(rng, 18, 24)}", f"theme={rng.choice(['dark', 'light'])}",
                                 f"cart={uuid(rng)}"] +
                                ([f"token={jwt(rng)}"] if rng.random() < 0.3 else []))
    if rng.random() < 0.5:
        h["X-Request-Id"] = uuid(rng)
    if content_type:
        h["Content-Type"] = content_type
    return h


def query(rng, pairs):
    """URL-encodes pairs as browsers and HTTP libraries do (spaces as + or %20)."""
    via = urllib.parse.quote_plus if rng.random() < 0.6 else urllib.parse.quote
    return urllib.parse.urlencode(pairs, quote_via=via)


def req(method, path, q="", h=None, body=""):
    return {"method": method, "path": path, "query": q, "headers": h or {}, "body": body}


def js(obj):
    return json.dumps(obj, ensure_ascii=False)


def price(rng):
    return round(rng.randrange(199, 250000) / 100, 2)


def gen_catalogue(rng):
    out = []
    for _ in range(150):
        pairs = [("category", rng.choice(CATEGORIES))]
        if rng.random() < 0.5:
            pairs.append(("q", rng.choice(PRODUCTS)[0].split(" ")[0].lower()))
        pairs.append(("sort", rng.choice(["price", "-price", "rating", "newest", "price,asc",
                                          "name desc"])))
        if rng.random() < 0.5:
            pairs.append(("order", rng.choice(["asc", "desc"])))
        if rng.random() < 0.4:
            pairs += [("min_price", str(price(rng))), ("max_price", str(price(rng) + 100))]
        if rng.random() < 0.3:
            pairs.append(("size", rng.choice(["12\"", "27\"", "5'11\"", "32x34", "XL", "8' x 10'"])))
        if rng.random() < 0.3:
            pairs.append(("fields", "id,name,price,images"))
        pairs += [("page", str(rng.randrange(1, 40))), ("per_page", rng.choice(["20", "50"]))]
        out.append(req("GET", "/v1/products", query(rng, pairs), headers(rng)))
    for _ in range(60):
        out.append(req("GET", f"/v1/products/{uuid(rng)}",
                       query(rng, [("include", "reviews,variants")]) if rng.random() < 0.5 else "",
                       headers(rng)))
    for _ in range(100):
        title, cat, desc = rng.choice(PRODUCTS)
        body = {"sku": f"{cat[:3].upper()}-{rng.randrange(10000, 99999)}", "name": title,
                "category": cat, "description": desc,
                "price": {"amount": price(rng), "currency": rng.choice(["USD", "EUR", "GBP"])},
                "compare_at": f"${price(rng)}", "colour": rng.choice(COLOURS),
                "dimensions": {"display": f"{rng.randrange(4, 80)}\" x {rng.randrange(4, 80)}\"",
                               "height_cm": rng.randrange(5, 220)},
                "tags": rng.sample(["sale", "new", "eco", "bestseller", "clearance", "gift"], 2),
                "stock": rng.randrange(0, 500)}
        if rng.random() < 0.3:
            body["image"] = {"filename": f"{uuid(rng)}.jpg", "data": blob(rng, 150, 700)}
        method, path = rng.choice([("POST", "/v1/products"),
                                   ("PUT", f"/v1/products/{uuid(rng)}"),
                                   ("PATCH", f"/v1/products/{uuid(rng)}")])
        out.append(req(method, path, "", headers(rng, "application/json"), js(body)))
    return out


def gen_search(rng):
    out = []
    for i in range(220):
        q = SEARCHES[i % len(SEARCHES)] if i < len(SEARCHES) else rng.choice(SEARCHES)
        pairs = [("q", q)]
        if rng.random() < 0.4:
            pairs.append(("sort", rng.choice(["relevance", "price_asc", "newest"])))
        if rng.random() < 0.3:
            pairs.append(("lang", rng.choice(["en", "fr", "de", "ja"])))
        out.append(req("GET", rng.choice(["/v1/search", "/search", "/api/search/products"]),
                       query(rng, pairs), headers(rng, auth=False)))
    for lang, lines in OTHER_REVIEWS.items():  # searches in other languages
        for line in lines[:2]:
            out.append(req("GET", "/v1/search", query(rng, [("q", line.rstrip("!.。"))]),
                           headers(rng, auth=False)))
    return out


def gen_reviews(rng):
    out = []
    langs = list(OTHER_REVIEWS)
    for i in range(230):
        if i % 2 == 0:
            text = " ".join(rng.sample(EN_REVIEWS, rng.randrange(1, 4)))
            lang = "en"
        else:
            lang = langs[i // 2 % len(langs)]
            lines = OTHER_REVIEWS[lang]
            text = " ".join(rng.sample(lines, min(len(lines), rng.randrange(1, 3))))
        body = {"rating": rng.randrange(1, 6), "title": text.split(".")[0][:60], "body": text,
                "language": lang, "author": {"display_name": name(rng)},
                "verified_purchase": rng.random() < 0.7}
        if rng.random() < 0.2:
            body["photos"] = [{"content_type": "image/jpeg", "data": blob(rng, 200, 900)}]
        out.append(req("POST", f"/v1/products/{uuid(rng)}/reviews", "",
                       headers(rng, "application/json; charset=utf-8"), js(body)))
    for _ in range(70):  # the same as an HTML form would send it
        text = rng.choice(EN_REVIEWS + PROSE)
        form = query(rng, [("name", name(rng)), ("email", email(rng)), ("comment", text),
                           ("rating", str(rng.randrange(1, 6)))])
        out.append(req("POST", "/comments", "", headers(rng, "application/x-www-form-urlencoded",
                                                        auth=False), form))
    return out


def gen_addresses(rng):
    out = []
    for _ in range(110):
        city, postcode, country = rng.choice(CITIES)
        addr = {"name": name(rng), "line1": f"{rng.randrange(1, 300)} {rng.choice(STREETS)}",
                "line2": rng.choice(UNITS), "city": city, "postcode": postcode, "country": country,
                "phone": rng.choice(["+1 (555) 010-%04d", "+44 20 7946 %04d", "+353 1 555 %04d",
                                     "+33 1 70 18 %04d"]) % rng.randrange(10000),
                "delivery_notes": rng.choice(["", "Leave at the back door -- dog is friendly.",
                                              "Ring twice; I'm on the 3rd floor.",
                                              "Gate code: #4521*", "Don't leave it with No. 12!",
                                              "If out, try 'Mrs. O'Neil' next door."])}
        method, path = rng.choice([("POST", "/v1/addresses"), ("PUT", f"/v1/addresses/{uuid(rng)}")])
        out.append(req(method, path, "", headers(rng, "application/json"), js(addr)))
    for _ in range(40):
        city, postcode, _ = rng.choice(CITIES)
        pairs = [("near", f"{rng.choice(STREETS)}, {city}"), ("radius", f"{rng.randrange(1, 50)}km")]
        if rng.random() < 0.5:
            pairs.append(("postcode", postcode))
        out.append(req("GET", "/v1/stores", query(rng, pairs), headers(rng, auth=False)))
    return out


def gen_snippets(rng):
    out = []
    for i in range(90):
        lang, code = CODE[i % len(CODE)]
        body = {"title": rng.choice(["Quick helper", "How I fixed it", "Example", "Snippet",
                                     "Re: your question -- try this"]),
                "language": lang, "code": code, "public": rng.random() < 0.5}
        out.append(req("POST", "/v1/snippets", "", headers(rng, "application/json"), js(body)))
    return out


def gen_support(rng):
    out = []
    for i in range(150):
        msg = " ".join([PROSE[i % len(PROSE)]] + rng.sample(PROSE, rng.randrange(0, 2)))
        body = {"subject": rng.choice(["Order problem", "Account", "Re: delivery", "Question",
                                       "Refund -- urgent", "Feedback :)", "Where's my parcel?"]),
                "message": msg, "order_id": f"#{rng.randrange(10000, 99999)}",
                "email": email(rng), "priority": rng.choice(["low", "normal", "high"])}
        if rng.random() < 0.15:
            body["attachment"] = {"name": "photo.png", "base64": blob(rng, 200, 1000)}
        out.append(req("POST", "/v1/support/tickets", "", headers(rng, "application/json"), js(body)))
    for _ in range(40):
        out.append(req("GET", "/v1/help/articles", query(rng, [("q", rng.choice(PROSE))]),
                       headers(rng, auth=False)))
    return out


def gen_auth(rng):
    out = []
    for _ in range(30):
        pw = "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!@#$%^&*-_'\"")
                     for _ in range(rng.randrange(10, 20)))
        form = query(rng, [("grant_type", "password"), ("username", email(rng)), ("password", pw),
                           ("client_id", "web-" + str(rng.randrange(100)))])
        out.append(req("POST", "/oauth/token", "",
                       headers(rng, "application/x-www-form-urlencoded", auth=False), form))
    for _ in range(30):
        out.append(req("POST", "/oauth/token", "",
                       headers(rng, "application/x-www-form-urlencoded", auth=False),
                       query(rng, [("grant_type", "refresh_token"), ("refresh_token", jwt(rng))])))
    for _ in range(30):
        out.append(req("POST", "/v1/sessions/verify", "", headers(rng, "application/json"),
                       js({"id_token": jwt(rng), "nonce": blob(rng, 12, 16)})))
    for _ in range(20):
        out.append(req("GET", "/v1/me", "", headers(rng)))
    return out


def gen_uploads(rng):
    out = []
    for _ in range(50):
        body = {"filename": rng.choice(["avatar.png", "IMG_2041.jpg", "scan (1).pdf", "o'brien.jpg"]),
                "content_type": rng.choice(["image/png", "image/jpeg", "application/pdf"]),
                "data": blob(rng, 300, 1800)}
        out.append(req("POST", "/v1/uploads", "", headers(rng, "application/json"), js(body)))
    for _ in range(25):
        boundary = "----WebKitFormBoundary" + "".join(
            rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
            for _ in range(16))
        parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n"
                 f"{rng.choice(EN_REVIEWS)}\r\n",
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\n"
                 f"{rng.choice(PROSE)}\n{rng.choice(PROSE)}\r\n",
                 f"--{boundary}--\r\n"]
        out.append(req("POST", "/v1/uploads/form", "",
                       headers(rng, f"multipart/form-data; boundary={boundary}"), "".join(parts)))
    return out


def gen_api_misc(rng):
    out = []
    for i in range(45):
        text = GRAPHQL[i % len(GRAPHQL)]
        q = text % uuid(rng) if "%s" in text else text
        body = {"query": q, "variables": {"q": rng.choice(SEARCHES)} if "$q" in q else {}}
        if "$input" in q:
            city, postcode, country = rng.choice(CITIES)
            body["variables"] = {"input": {"line1": f"{rng.randrange(1, 99)} {rng.choice(STREETS)}",
                                           "city": city, "postcode": postcode}}
        out.append(req("POST", "/graphql", "", headers(rng, "application/json"), js(body)))
    for i in range(45):
        pairs = [("$filter", ODATA_FILTERS[i % len(ODATA_FILTERS)]), ("$top", "20"),
                 ("$orderby", rng.choice(["Price desc", "Name", "CreatedAt desc,Name asc"]))]
        if rng.random() < 0.4:
            pairs.append(("$select", "Id,Name,Price"))
        out.append(req("GET", "/odata/Products", query(rng, pairs), headers(rng)))
    for _ in range(30):  # react-admin style list parameters
        pairs = [("filter", js({"q": rng.choice(SEARCHES), "status": "active"})),
                 ("range", f"[{rng.randrange(0, 50)},{rng.randrange(50, 100)}]"),
                 ("sort", js([rng.choice(["title", "price", "id"]), rng.choice(["ASC", "DESC"])]))]
        out.append(req("GET", "/admin/api/posts", query(rng, pairs), headers(rng)))
    for _ in range(60):
        items = [{"sku": f"SKU-{rng.randrange(1000, 9999)}", "qty": rng.randrange(1, 5),
                  "unit_price": price(rng), "name": rng.choice(PRODUCTS)[0]}
                 for _ in range(rng.randrange(1, 4))]
        body = {"items": items, "coupon": rng.choice(["", "SAVE10", "WELCOME-2024", "BF_50%"]),
                "note": rng.choice(["", "Gift -- no receipt please.", "Leave at door; it's safe.",
                                    "Call 555-0100 on arrival.", "Deliver between 9 and 5."]),
                "payment": {"method": "card", "token": "tok_" + blob(rng, 12, 18)}}
        out.append(req("POST", "/v1/orders", "", headers(rng, "application/json"), js(body)))
    for _ in range(55):
        ref = rng.choice(["https://www.google.com/", "https://news.example.com/article?id=42&ref=home",
                          "https://m.facebook.com/", "", "https://shop.example.com/search?q=order+by+price"])
        body = {"event": rng.choice(["page_view", "add_to_cart", "search", "checkout_step"]),
                "url": f"https://shop.example.com/p/{uuid(rng)}?utm_source=newsletter&utm_campaign=bf-2024",
                "referrer": ref, "ts": 1733000000000 + rng.randrange(10 ** 9),
                "props": {"screen": rng.choice(["1920x1080", "390x844"]), "tz": "Europe/Dublin",
                          "query": rng.choice(SEARCHES)}}
        out.append(req("POST", "/v1/events", "", headers(rng, "application/json", auth=False),
                       js(body)))
    return out


def corpus():
    rng = random.Random(SEED)
    out = []
    for gen in (gen_catalogue, gen_search, gen_reviews, gen_addresses, gen_snippets, gen_support,
                gen_auth, gen_uploads, gen_api_misc):
        out.extend(gen(rng))
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = pathlib.Path(args[0]) if args else HERE / "requests.jsonl"
    text = corpus()
    if "--check" in sys.argv:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            sys.exit(f"{path} is not what generate.py writes; run tests/corpus/benign/generate.py")
        return
    path.write_text(text, encoding="utf-8")
    print(f"{path}: {text.count(chr(10))} requests, sha256 "
          f"{hashlib.sha256(text.encode()).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
