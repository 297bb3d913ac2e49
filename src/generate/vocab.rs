//! Word lists the records are made of. Some values are chosen to exercise writers and
//! readers: commas and quotes that CSV must quote, non-ASCII letters, `&` that XML must escape.
//! None contains a line break, so every record stays on one physical line.

/// A person's name and the ASCII spelling used in email addresses.
#[derive(Clone, Copy)]
pub(super) struct Name {
    pub display: &'static str,
    pub slug: &'static str,
}

const fn name(display: &'static str, slug: &'static str) -> Name {
    Name { display, slug }
}

pub(super) const FIRST_NAMES: &[Name] = &[
    name("Emma", "emma"),
    name("Liam", "liam"),
    name("Olivia", "olivia"),
    name("Noah", "noah"),
    name("Ava", "ava"),
    name("Mateo", "mateo"),
    name("Sofia", "sofia"),
    name("Lucas", "lucas"),
    name("Mia", "mia"),
    name("Elijah", "elijah"),
    name("Chloé", "chloe"),
    name("José", "jose"),
    name("Zoë", "zoe"),
    name("Søren", "soren"),
    name("Łukasz", "lukasz"),
    name("Aiko", "aiko"),
    name("Priya", "priya"),
    name("Oluwaseun", "oluwaseun"),
    name("Robert \"Bob\"", "robert"),
    name("Anne-Marie", "annemarie"),
    name("Mohammed", "mohammed"),
    name("Hannah", "hannah"),
    name("Jürgen", "jurgen"),
    name("Camille", "camille"),
];

pub(super) const LAST_NAMES: &[Name] = &[
    name("Smith", "smith"),
    name("Johnson", "johnson"),
    name("García", "garcia"),
    name("Müller", "muller"),
    name("Rossi", "rossi"),
    name("Nguyen", "nguyen"),
    name("O'Brien", "obrien"),
    name("Kowalski", "kowalski"),
    name("Tanaka", "tanaka"),
    name("Dubois", "dubois"),
    name("Okafor", "okafor"),
    name("Patel", "patel"),
    name("Smith, Jr.", "smith"),
    name("van der Berg", "vanderberg"),
    name("Fernández", "fernandez"),
    name("Andersen", "andersen"),
    name("Kim", "kim"),
    name("Silva", "silva"),
    name("Brown", "brown"),
    name("Wilson", "wilson"),
];

/// A city with its country (ISO 3166 alpha-2) and the country's calling code.
#[derive(Clone, Copy, PartialEq)]
pub(super) struct Place {
    pub city: &'static str,
    pub country: &'static str,
    pub calling_code: u16,
}

const fn place(city: &'static str, country: &'static str, calling_code: u16) -> Place {
    Place {
        city,
        country,
        calling_code,
    }
}

pub(super) const PLACES: &[Place] = &[
    place("New York", "US", 1),
    place("Washington, D.C.", "US", 1),
    place("Austin", "US", 1),
    place("San Francisco", "US", 1),
    place("Chicago", "US", 1),
    place("Toronto", "CA", 1),
    place("London", "GB", 44),
    place("Manchester", "GB", 44),
    place("Berlin", "DE", 49),
    place("München", "DE", 49),
    place("Paris", "FR", 33),
    place("Lyon", "FR", 33),
    place("Madrid", "ES", 34),
    place("Milano", "IT", 39),
    place("Amsterdam", "NL", 31),
    place("Kraków", "PL", 48),
    place("São Paulo", "BR", 55),
    place("Tokyo", "JP", 81),
    place("Lagos", "NG", 234),
    place("Bengaluru", "IN", 91),
];

pub(super) const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
    "example.org",
];

pub(super) const SEGMENTS: &[&str] = &["consumer", "consumer", "consumer", "business", "vip"];

pub(super) const LOYALTY_TIERS: &[&str] = &["", "bronze", "silver", "gold", "platinum"];

/// A product category with the nouns of its products and its SKU prefix.
#[derive(Clone, Copy)]
pub(super) struct Category {
    pub name: &'static str,
    pub sku: &'static str,
    pub nouns: &'static [&'static str],
    /// Typical price range in cents.
    pub price_cents: (i64, i64),
    /// Typical weight range in grams.
    pub weight_g: (i64, i64),
}

pub(super) const CATEGORIES: &[Category] = &[
    Category {
        name: "apparel",
        sku: "APP",
        nouns: &["T-Shirt", "Hoodie", "Jacket", "Jeans", "Sneakers", "Scarf"],
        price_cents: (999, 14_999),
        weight_g: (150, 1_200),
    },
    Category {
        name: "electronics",
        sku: "ELE",
        nouns: &[
            "Headphones",
            "Charger",
            "Speaker",
            "Keyboard",
            "Monitor",
            "Webcam",
        ],
        price_cents: (1_499, 189_999),
        weight_g: (50, 6_500),
    },
    Category {
        name: "home & kitchen",
        sku: "HOM",
        nouns: &[
            "Kettle",
            "Pan",
            "Lamp",
            "Blanket",
            "Knife Set",
            "12\" Pizza Stone",
        ],
        price_cents: (799, 24_999),
        weight_g: (200, 4_000),
    },
    Category {
        name: "books",
        sku: "BOK",
        nouns: &["Cookbook", "Novel", "Atlas", "Notebook", "Guide"],
        price_cents: (499, 5_999),
        weight_g: (100, 1_500),
    },
    Category {
        name: "sports",
        sku: "SPO",
        nouns: &[
            "Yoga Mat",
            "Dumbbell",
            "Water Bottle",
            "Tent",
            "Bike Helmet",
        ],
        price_cents: (1_299, 39_999),
        weight_g: (100, 9_000),
    },
];

pub(super) const ADJECTIVES: &[&str] = &[
    "Classic", "Eco", "Pro", "Ultra", "Compact", "Deluxe", "Everyday", "Vintage", "Smart", "Trail",
];

pub(super) const COLORS: &[&str] = &["black", "white", "navy", "red", "olive", "sand", "grey"];

pub(super) const SIZES: &[&str] = &["XS", "S", "M", "L", "XL", "one size"];

pub(super) const MATERIALS: &[&str] = &["cotton", "steel", "bamboo", "recycled plastic", "wool"];

pub(super) const CHANNELS: &[&str] = &["web", "mobile", "store", "marketplace"];

/// An order status as the shop means it, then the spellings upstream systems actually send.
pub(super) const STATUSES: &[(&str, &[&str])] = &[
    ("pending", &["PENDING", " pending", "Pending "]),
    ("paid", &["PAID", "Paid", " paid"]),
    ("shipped", &["SHIPPED", " Shipped", "shipped "]),
    ("delivered", &["DELIVERED", "Delivered", " delivered "]),
    ("cancelled", &["canceled", "CANCELLED", "Canceled"]),
    ("returned", &["RETURNED", "Returned", " returned"]),
];

pub(super) const PAYMENT_METHODS: &[&str] = &[
    "card",
    "card",
    "card",
    "paypal",
    "apple_pay",
    "bank_transfer",
    "gift_card",
];

/// A carrier and the prefix of its tracking numbers.
pub(super) const CARRIERS: &[(&str, &str)] = &[
    ("UPS", "1Z"),
    ("DHL", "JD"),
    ("FedEx", "FX"),
    ("USPS", "94"),
    ("Royal Mail & Parcelforce", "RM"),
    ("La Poste", "LP"),
];

pub(super) const PAGES: &[&str] = &["/", "/sale", "/new", "/help/returns", "/account", "/cart"];

pub(super) const SEARCH_TERMS: &[&str] = &[
    "running shoes",
    "usb-c charger",
    "12\" pizza stone",
    "gift for dad",
    "c:\\temp backpack",
    "café mug",
    "<script>alert(1)</script>",
];

pub(super) const REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://t.co/x1y2z3",
    "android-app://com.example.news",
];

pub(super) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "StrataShop/4.2 (iOS 17.5; \"beta\")",
];

pub(super) const DEVICES: &[&str] = &["desktop", "mobile", "tablet", "app"];

/// Lines a broken upstream sometimes writes into NDJSON instead of a record.
pub(super) const GARBAGE_LINES: &[&str] = &[
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "ERROR: upstream timed out while writing record",
    "}{",
    "{\"id\": , }",
    "--- log rotated ---",
];
