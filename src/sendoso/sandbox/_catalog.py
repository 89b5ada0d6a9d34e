"""The sandbox's gift catalog: fixed, realistic items so tests and demos are reproducible."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import product

from sendoso.models import Gift, GiftVariant, ShippingEstimate

__all__ = ["CATALOG", "find_gift"]

_US = ["US"]
_NORTH_AMERICA = ["US", "CA"]
_WESTERN = ["US", "CA", "GB", "IE", "DE", "FR", "NL", "BE", "AU"]
_WORLDWIDE = [
    "US", "CA", "MX", "BR", "GB", "IE", "DE", "FR", "NL", "BE", "ES", "IT", "SE", "DK",
    "CH", "AU", "NZ", "JP", "SG", "IN",
]  # fmt: skip


def _shipping(domestic: str, international: str, origin: str = "US") -> ShippingEstimate:
    return ShippingEstimate(
        origin_country=origin, domestic=Decimal(domestic), international=Decimal(international)
    )


def _physical(
    gid: str,
    name: str,
    price: str,
    ships_to: Sequence[str],
    shipping: ShippingEstimate,
    description: str,
    *,
    category: str = "physical",
    variants: Iterable[GiftVariant] = (),
    currency: str = "USD",
) -> Gift:
    return Gift(
        id=gid,
        name=name,
        category=category,
        price=Decimal(price),
        currency=currency,
        requires_address=True,
        ships_to=list(ships_to),
        shipping_estimate=shipping,
        variants=list(variants),
        description=description,
    )


def _emailed(
    gid: str,
    name: str,
    price: str,
    category: str,
    ships_to: Sequence[str] | None,
    description: str,
    currency: str = "USD",
) -> Gift:
    return Gift(
        id=gid,
        name=name,
        category=category,
        price=Decimal(price),
        currency=currency,
        requires_address=False,
        ships_to=list(ships_to) if ships_to is not None else None,
        shipping_estimate=None,
        description=description,
    )


def _variants(
    prefix: str,
    sizes: Sequence[str],
    colors: Sequence[str],
    out_of_stock: frozenset[tuple[str, str]] = frozenset(),
) -> list[GiftVariant]:
    variants = []
    for size, color in product(sizes or [""], colors or [""]):
        options = {}
        if size:
            options["size"] = size
        if color:
            options["color"] = color
        slug = "_".join(
            part.lower().replace(" ", "").replace("/", "") for part in (size, color) if part
        )
        variants.append(
            GiftVariant(
                id=f"var_{prefix}_{slug}",
                name=" / ".join(part for part in (size, color.title()) if part),
                options=options,
                in_stock=(size, color) not in out_of_stock,
            )
        )
    return variants


CATALOG: tuple[Gift, ...] = (
    # Physical items.
    _physical(
        "gft_phys_coffee_sampler",
        "Artisan Coffee Sampler",
        "45.00",
        _NORTH_AMERICA,
        _shipping("8.50", "24.00"),
        "Four 4 oz bags of single-origin whole-bean coffee from small-batch roasters.",
    ),
    _physical(
        "gft_phys_cookie_box",
        "Gourmet Cookie Box (1 dozen)",
        "38.00",
        _US,
        _shipping("9.00", "9.00"),
        "A dozen freshly baked cookies in a gift box; perishable, ships within the US only.",
    ),
    _physical(
        "gft_phys_cabernet",
        "Napa Valley Cabernet Sauvignon",
        "65.00",
        _US,
        _shipping("14.00", "14.00"),
        "One 750 ml bottle; an adult (21+) must sign for delivery. US only.",
    ),
    _physical(
        "gft_phys_succulent_trio",
        "Succulent Trio in Ceramic Pots",
        "42.00",
        _US,
        _shipping("11.00", "11.00"),
        "Three live succulents in hand-glazed pots. Plants cannot cross borders.",
    ),
    _physical(
        "gft_phys_tumbler",
        "Insulated Steel Tumbler 20 oz",
        "35.00",
        _WESTERN,
        _shipping("7.50", "19.50"),
        "Double-walled vacuum tumbler that keeps drinks hot for 6 hours.",
    ),
    _physical(
        "gft_phys_book_bundle",
        "Business Bestsellers Book Bundle",
        "55.00",
        _WORLDWIDE,
        _shipping("6.00", "22.00"),
        "Three recent business bestsellers, hardcover, with a bookmark.",
    ),
    _physical(
        "gft_phys_truffles",
        "Belgian Chocolate Truffle Collection",
        "48.00",
        ["US", "CA", "GB", "IE", "DE", "FR", "NL", "BE"],
        _shipping("9.50", "21.00"),
        "Twenty-four assorted truffles in a keepsake box; shipped cold in summer.",
    ),
    _physical(
        "gft_phys_headphones",
        "Wireless Noise-Cancelling Headphones",
        "249.00",
        _NORTH_AMERICA,
        _shipping("0.00", "18.00"),
        "Over-ear Bluetooth headphones with 30-hour battery life.",
    ),
    _physical(
        "gft_phys_charcuterie",
        "Charcuterie & Cheese Board Set",
        "89.00",
        _US,
        _shipping("16.00", "16.00"),
        "Acacia board with cured meats, aged cheeses and crackers. Perishable; US only.",
    ),
    _physical(
        "gft_phys_tea_set",
        "Loose-Leaf Tea Tasting Set",
        "32.00",
        _WORLDWIDE,
        _shipping("5.50", "17.00"),
        "Eight loose-leaf teas with an infuser, from green to rooibos.",
    ),
    _physical(
        "gft_phys_snake_plant",
        "Desk Plant: Snake Plant",
        "29.00",
        _US,
        _shipping("10.00", "10.00"),
        "A low-light tolerant snake plant in a 4 in. pot.",
    ),
    _physical(
        "gft_phys_popcorn_tin",
        "Gourmet Popcorn Tin",
        "40.00",
        _NORTH_AMERICA,
        _shipping("9.00", "20.00"),
        "Caramel, cheddar and kettle popcorn in a 2-gallon tin.",
    ),
    _physical(
        "gft_phys_soy_candle",
        "Hand-Poured Soy Candle",
        "28.00",
        ["US", "CA", "GB"],
        _shipping("6.50", "16.00"),
        "Cedar and sea salt, 40-hour burn time, in a reusable glass jar.",
    ),
    _physical(
        "gft_phys_leather_journal",
        "Leather Journal & Pen Set",
        "60.00",
        ["GB", "IE", "DE", "FR", "NL", "BE", "US"],
        _shipping("4.50", "15.00", origin="GB"),
        "A5 full-grain leather journal and a brass pen, made in England.",
        currency="GBP",
    ),
    _physical(
        "gft_phys_bbq_sampler",
        "BBQ Rub & Sauce Sampler",
        "36.00",
        _US,
        _shipping("8.00", "8.00"),
        "Four rubs and two sauces from Texas, Kansas City and Carolina pitmasters.",
    ),
    # eGift cards: delivered by email, each redeemable in the countries it is restricted to.
    _emailed(
        "gft_egift_amazon_us_25",
        "Amazon.com eGift Card $25",
        "25.00",
        "egift",
        _US,
        "Redeemable on amazon.com only (US accounts).",
    ),
    _emailed(
        "gft_egift_amazon_us_50",
        "Amazon.com eGift Card $50",
        "50.00",
        "egift",
        _US,
        "Redeemable on amazon.com only (US accounts).",
    ),
    _emailed(
        "gft_egift_amazon_uk_25",
        "Amazon.co.uk eGift Card £25",
        "25.00",
        "egift",
        ["GB"],
        "Redeemable on amazon.co.uk only.",
        currency="GBP",
    ),
    _emailed(
        "gft_egift_starbucks_10",
        "Starbucks eGift $10",
        "10.00",
        "egift",
        _US,
        "Redeemable at participating US Starbucks stores and in the app.",
    ),
    _emailed(
        "gft_egift_doordash_25",
        "DoorDash Gift Card $25",
        "25.00",
        "egift",
        _US,
        "Credit for food delivery on DoorDash in the US.",
    ),
    _emailed(
        "gft_egift_visa_50",
        "Virtual Visa Prepaid Card $50",
        "50.00",
        "egift",
        _US,
        "Use online anywhere Visa debit is accepted in the US. Expires 6 months after issue.",
    ),
    _emailed(
        "gft_egift_uber_25",
        "Uber Gift Card $25",
        "25.00",
        "egift",
        _NORTH_AMERICA,
        "Rides or Uber Eats in the US and Canada.",
    ),
    _emailed(
        "gft_egift_tim_hortons_15",
        "Tim Hortons eGift CA$15",
        "15.00",
        "egift",
        ["CA"],
        "Redeemable at Tim Hortons restaurants in Canada.",
        currency="CAD",
    ),
    _emailed(
        "gft_egift_global_choice_25",
        "Global Choice Reward $25",
        "25.00",
        "egift",
        None,
        "The recipient picks from 100+ brands in their own country.",
    ),
    _emailed(
        "gft_egift_global_choice_100",
        "Global Choice Reward $100",
        "100.00",
        "egift",
        None,
        "The recipient picks from 100+ brands in their own country.",
    ),
    # Branded swag: addressed, and most items come in sizes or colours.
    _physical(
        "gft_swag_zip_hoodie",
        "Branded Zip Hoodie",
        "55.00",
        _WESTERN,
        _shipping("8.00", "23.00"),
        "Midweight cotton-blend zip hoodie with your embroidered logo.",
        category="swag",
        variants=_variants(
            "hoodie",
            ["S", "M", "L", "XL", "XXL"],
            ["navy", "heather grey"],
            frozenset({("XXL", "heather grey")}),
        ),
    ),
    _physical(
        "gft_swag_crew_tee",
        "Branded Crew T-Shirt",
        "22.00",
        _NORTH_AMERICA,
        _shipping("5.00", "14.00"),
        "Soft ringspun cotton tee with a screen-printed logo.",
        category="swag",
        variants=_variants("tee", ["S", "M", "L", "XL"], ["black", "white"]),
    ),
    _physical(
        "gft_swag_water_bottle",
        "Branded Insulated Water Bottle",
        "30.00",
        _WORLDWIDE,
        _shipping("6.00", "18.00"),
        "24 oz stainless bottle with a laser-engraved logo.",
        category="swag",
        variants=_variants("bottle", [], ["black", "white", "red"], frozenset({("", "red")})),
    ),
    _physical(
        "gft_swag_laptop_backpack",
        "Branded Laptop Backpack",
        "85.00",
        _NORTH_AMERICA,
        _shipping("12.00", "30.00"),
        "Water-resistant backpack with a padded 16 in. laptop sleeve.",
        category="swag",
        variants=_variants("backpack", [], ["charcoal", "black"]),
    ),
    _physical(
        "gft_swag_socks",
        "Branded Crew Socks",
        "15.00",
        _US,
        _shipping("4.00", "4.00"),
        "Two pairs of combed-cotton socks knitted in your brand colours.",
        category="swag",
        variants=_variants("socks", ["S/M", "L/XL"], []),
    ),
    _physical(
        "gft_swag_cap",
        "Embroidered Cap",
        "25.00",
        ["US", "CA", "GB"],
        _shipping("5.00", "15.00"),
        "Unstructured six-panel cap with an embroidered logo.",
        category="swag",
        variants=_variants("cap", [], ["navy", "khaki"]),
    ),
    _physical(
        "gft_swag_notebook",
        "Branded Hardcover Notebook",
        "18.00",
        _WORLDWIDE,
        _shipping("4.50", "13.00"),
        "A5 dotted notebook with a debossed logo. One style, no variants.",
        category="swag",
    ),
    # Donations: no address, no country restriction published.
    _emailed(
        "gft_don_clean_water_25",
        "Donation: Clean Water Fund $25",
        "25.00",
        "donation",
        None,
        "Funds clean water projects; the recipient is emailed a donation certificate.",
    ),
    _emailed(
        "gft_don_red_cross_50",
        "Donation: Red Cross $50",
        "50.00",
        "donation",
        None,
        "Supports disaster relief; the recipient is emailed a donation certificate.",
    ),
    _emailed(
        "gft_don_wildlife_20",
        "Donation: Wildlife Conservation $20",
        "20.00",
        "donation",
        None,
        "Protects endangered habitats; the recipient is emailed a donation certificate.",
    ),
    _emailed(
        "gft_don_classroom_50",
        "Donation: Classroom Supplies $50",
        "50.00",
        "donation",
        None,
        "Buys supplies for a public-school classroom chosen by the recipient.",
    ),
)

_BY_ID = {gift.id: gift for gift in CATALOG}


def find_gift(gift_id: str) -> Gift | None:
    return _BY_ID.get(gift_id)
