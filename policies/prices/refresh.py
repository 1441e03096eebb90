"""`tierwise prices refresh`: re-read EC2 on-demand prices from the AWS Pricing API (boto3) into prices.json.

Only the instance types already in the table (or passed explicitly) are queried, one GetProducts call each, so
the table stays reviewable. Bedrock prices are not in the Pricing API in a stable shape and stay hand-maintained.
Tests drive this with botocore's Stubber: no network.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

LOCATIONS = {"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-2": "US West (Oregon)",
             "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)", "ap-northeast-1": "Asia Pacific (Tokyo)"}


def filters(instance_type: str, region: str) -> list[dict]:
    f = {"instanceType": instance_type, "regionCode": region, "operatingSystem": "Linux", "tenancy": "Shared",
         "preInstalledSw": "NA", "capacitystatus": "Used"}
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in f.items()]


def on_demand_usd(price_item: str) -> float:
    """The hourly USD price of one PriceList entry (a JSON string)."""
    item = json.loads(price_item)
    for term in item.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            if dim.get("unit") == "Hrs":
                return float(dim["pricePerUnit"]["USD"])
    raise ValueError(f"no hourly OnDemand price in {item.get('product', {}).get('sku', '?')}")


def refresh(prices_file: Path, client, regions: list[str] | None = None, today: dt.date | None = None) -> dict:
    """Update prices_file in place; returns {region: {type: (old, new)}} for the changed entries."""
    data = json.loads(prices_file.read_text())
    ec2 = data["ec2_on_demand"]
    changes: dict = {}
    for region in regions or sorted(ec2["regions"]):
        table = ec2["regions"].setdefault(region, {})
        for itype in sorted(table):
            resp = client.get_products(ServiceCode="AmazonEC2", Filters=filters(itype, region), MaxResults=10)
            items = resp.get("PriceList", [])
            if not items:
                raise LookupError(f"Pricing API returned no product for {itype} in {region}")
            new = max(on_demand_usd(i) for i in items)
            if new != table[itype]:
                changes.setdefault(region, {})[itype] = (table[itype], new)
                table[itype] = new
    stamp = (today or dt.date.today()).isoformat()
    ec2.update({"source": "AWS Price List Query API (pricing:GetProducts, AmazonEC2, Linux, Shared, OnDemand)",
                "as_of": stamp, "verified_by_api": True})
    data["version"] = f"{stamp}.api"
    prices_file.write_text(json.dumps(data, indent=2) + "\n")
    return changes
