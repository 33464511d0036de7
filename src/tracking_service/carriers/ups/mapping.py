"""UPS status codes -> normalized statuses.

UPS sends a status `type` (one or two letters), a 2-character activity `code` and a 3-digit
`statusCode` on the current status and on every activity. The 3-digit code is the finest and is
mapped by its meaning (UPS's customer-facing text, `STATUS_CODE_TEXT`) whatever type comes with
it: an "Out for Delivery" code may arrive with type `I`, a "Delivered to UPS Access Point" with
type `D`. Without a `statusCode` the activity code is read (`OT` is out for delivery), and the
type is the last resort. Sources: UPS's "Tracking Status/Description Codes" table
(`carrier-specs/ups/status-codes.csv`) and the status types of the UPS Tracking guide.
"""

from __future__ import annotations

import logging

from tracking_service.carriers.status import Status

logger = logging.getLogger(__name__)

S = Status

# Every code of UPS's table, with UPS's text, and what it means for the parcel. None: the code
# says nothing about where the parcel is (a data update, an investigation closed): keep the
# last status.
STATUS_CODE_TABLE: dict[str, tuple[str, Status | None]] = {
    "000": ("Status Not Available", None),
    "003": ("Shipment Ready for UPS", S.INFO_RECEIVED),
    "005": ("On the Way", S.IN_TRANSIT),
    "006": ("Out for Delivery", S.OUT_FOR_DELIVERY),
    "007": ("Shipment Information Voided", S.EXCEPTION),
    "010": ("On the Way", S.IN_TRANSIT),
    "011": ("Delivered", S.DELIVERED),
    "012": ("Clearance in Progress", S.IN_TRANSIT),
    "013": ("Exception", S.EXCEPTION),
    "014": ("Clearance Completed", S.IN_TRANSIT),
    "016": ("In Warehouse", S.EXCEPTION),
    "017": ("Held for Customer Pickup", S.AVAILABLE_FOR_PICKUP),
    "018": ("Delivery Change Requested: Hold for Pickup", S.IN_TRANSIT),
    "019": ("Held for Future Delivery", S.EXCEPTION),
    "020": ("Held for Future Delivery Requested", S.IN_TRANSIT),
    "021": ("Out for Delivery", S.OUT_FOR_DELIVERY),
    "022": ("First Attempt Made", S.FAILED_ATTEMPT),
    "023": ("Second Delivery Attempted", S.FAILED_ATTEMPT),
    "024": ("Final Attempt Made", S.FAILED_ATTEMPT),
    "025": ("On the Way", S.IN_TRANSIT),
    "026": ("Delivered by Local Post Office", S.DELIVERED),
    "027": ("Delivery Address Change Requested", S.IN_TRANSIT),
    "028": ("Delivery Address Changed", S.IN_TRANSIT),
    "029": ("Exception: Action Required", S.EXCEPTION),
    "030": ("Local Post Office Exception", S.EXCEPTION),
    "032": ("Adverse Weather May Cause Delay", S.EXCEPTION),
    "033": ("Return to Sender Requested", S.RETURNED_TO_SENDER),
    "034": ("Returned to Sender", S.RETURNED_TO_SENDER),
    "035": ("Returning to Sender", S.RETURNED_TO_SENDER),
    "036": ("Returning to Sender: In Transit", S.RETURNED_TO_SENDER),
    "037": ("Out for Delivery", S.OUT_FOR_DELIVERY),
    "038": ("Picked Up by UPS", S.IN_TRANSIT),
    "039": ("On the Way", S.IN_TRANSIT),
    "040": ("Ready for Customer Pickup", S.AVAILABLE_FOR_PICKUP),
    "041": ("Service Upgrade Requested", S.IN_TRANSIT),
    "042": ("Service Upgraded", S.IN_TRANSIT),
    "043": ("Voided Pickup", S.EXCEPTION),
    "044": ("On the Way to UPS", S.IN_TRANSIT),
    "045": ("On the Way to UPS", S.IN_TRANSIT),
    "046": ("Delay", S.EXCEPTION),
    "047": ("On the Way", S.IN_TRANSIT),
    "048": ("Delay", S.EXCEPTION),
    "049": ("Delay: Action Required", S.EXCEPTION),
    "050": ("Address Information Required", S.EXCEPTION),
    "051": ("Delay: Emergency Situation or Severe Weather", S.EXCEPTION),
    "052": ("Delay: Severe Weather", S.EXCEPTION),
    "053": ("Delay: Severe Weather", S.EXCEPTION),
    "054": ("Delivery Change Requested", S.IN_TRANSIT),
    "055": ("Rescheduled Delivery", S.IN_TRANSIT),
    "056": ("Service Upgrade Requested", S.IN_TRANSIT),
    "057": ("On the Way to a Local UPS Access Point™", S.IN_TRANSIT),
    "058": ("Clearance Information Required", S.EXCEPTION),
    "059": ("Damage Reported", S.EXCEPTION),
    "060": ("Delivery Attempted", S.FAILED_ATTEMPT),
    "061": ("Delivery Attempted: Adult Signature Required", S.FAILED_ATTEMPT),
    "062": ("Delivery Attempted: Funds Required", S.FAILED_ATTEMPT),
    "063": ("Delivery Change Completed", S.IN_TRANSIT),
    "064": ("Delivery Refused", S.EXCEPTION),
    "065": ("Pickup Attempted", S.INFO_RECEIVED),  # at the shipper: not with UPS yet
    "066": ("Post Office Delivery Attempted", S.FAILED_ATTEMPT),
    "067": ("Returned to Sender by Post Office", S.RETURNED_TO_SENDER),
    "068": ("Sent to Lost and Found", S.EXCEPTION),
    "069": ("Unable to Deliver", S.EXCEPTION),
    "070": ("Package not at UPS Access Point™ yet", S.IN_TRANSIT),
    "071": ("Preparing for Delivery", S.IN_TRANSIT),
    "072": ("Loaded on Delivery Vehicle", S.OUT_FOR_DELIVERY),
    "073": ("In Transit to UPS Delivery Partner", S.IN_TRANSIT),
    "074": ("UPS Delivery Partner has Shipment", S.IN_TRANSIT),
    "075": ("Scheduled for Delivery", S.IN_TRANSIT),
    "076": ("UPS Delivery Partner Exception", S.EXCEPTION),
    "077": ("Scheduled for Pickup Today", S.AVAILABLE_FOR_PICKUP),
    "078": ("Your Driver is Arriving Soon!", S.OUT_FOR_DELIVERY),
    "079": ("Order Processed: In Transit to UPS", S.IN_TRANSIT),
    "080": ("Order Processed: Ready for UPS", S.INFO_RECEIVED),
    "081": ("Returned - Damage Reported", S.RETURNED_TO_SENDER),
    "082": ("Delivery Instructions Received", S.IN_TRANSIT),
    "083": ("Held", S.EXCEPTION),
    "084": ("Cleared", S.IN_TRANSIT),
    "085": ("Held for COD Payment", S.EXCEPTION),
    "086": ("Delay", S.EXCEPTION),
    "087": ("On the Way", S.IN_TRANSIT),
    "088": ("Test", None),
    "089": ("Out for Delivery", S.OUT_FOR_DELIVERY),
    "090": ("Delay", S.EXCEPTION),
    "091": ("Out for Delivery", S.OUT_FOR_DELIVERY),
    "092": ("Customs Clearance in Progress", S.IN_TRANSIT),
    "093": ("Premier Recovery In Progress", S.EXCEPTION),
    "094": ("Premier Recovery Completed", S.IN_TRANSIT),
    # Requests and confirmations of delivery changes: the parcel keeps moving as asked.
    "095": ("Additional Attempt Requested", S.IN_TRANSIT),
    "096": ("Address Change Confirmed", S.IN_TRANSIT),
    "097": ("Address Change Requested", S.IN_TRANSIT),
    "098": ("Deliver to Original Address Requested", S.IN_TRANSIT),
    "099": ("Deliver to Original Address Confirmed", S.IN_TRANSIT),
    "100": ("Hold at UPS Access Point™ Confirmed", S.IN_TRANSIT),
    "101": ("Hold at UPS Access Point™ Requested", S.IN_TRANSIT),
    "102": ("Hold for Courier Requested", S.IN_TRANSIT),
    "103": ("Hold for Courier Confirmed", S.IN_TRANSIT),
    "104": ("Hold for Instructions Confirmed", S.IN_TRANSIT),
    "105": ("Hold for Instructions Requested", S.IN_TRANSIT),
    "106": ("Hold for Pickup Confirmed", S.IN_TRANSIT),
    "107": ("Hold for Pickup Requested", S.IN_TRANSIT),
    "108": ("Hold for Pickup Today Confirmed", S.IN_TRANSIT),
    "109": ("Hold for Pickup Today Requested", S.IN_TRANSIT),
    "110": ("Refrigeration Confirmed", S.IN_TRANSIT),
    "111": ("Refrigeration Requested", S.IN_TRANSIT),
    "112": ("Re-Ice Confirmed", S.IN_TRANSIT),
    "113": ("Re-Ice Requested", S.IN_TRANSIT),
    "114": ("Request Canceled", S.IN_TRANSIT),
    "115": ("Reschedule Delivery Confirmed", S.IN_TRANSIT),
    "116": ("Reschedule Delivery Requested", S.IN_TRANSIT),
    "117": ("Return by Saturday Confirmed", S.RETURNED_TO_SENDER),
    "118": ("Return to Sender Confirmed", S.RETURNED_TO_SENDER),
    "119": ("Return to Sender Requested", S.RETURNED_TO_SENDER),
    "120": ("Saturday Delivery Confirmed", S.IN_TRANSIT),
    "121": ("Saturday Delivery Requested", S.IN_TRANSIT),
    "122": ("Upgrade Confirmed", S.IN_TRANSIT),
    "123": ("Pending Release From Non-UPS Broker", S.EXCEPTION),
    "124": ("Clearance Information Needed", S.EXCEPTION),
    "125": ("Clearance Information Needed", S.EXCEPTION),
    "126": ("Pending Government Agency Release", S.EXCEPTION),
    "127": ("Investigation Closed", None),
    "128": ("Investigation Canceled", None),
    "129": ("Investigation Opened", S.EXCEPTION),
    "130": ("Claim in Progress", S.EXCEPTION),
    "131": ("Final Pickup Attempted", S.INFO_RECEIVED),
    "132": ("Airport Security Delay", S.EXCEPTION),
    "133": ("Return Label Left With Customer", None),
    "134": ("Cleared Import Customs", S.IN_TRANSIT),
    "135": ("Second Pickup Attempted", S.INFO_RECEIVED),
    "136": ("Delivery Rescheduled for Saturday", S.IN_TRANSIT),
    "137": ("Transferred to UPS Delivery Partner", S.IN_TRANSIT),
    "138": ("Awaiting Scheduled Departure", S.IN_TRANSIT),
    "139": ("Security Access Required", S.EXCEPTION),
    "140": ("Claim Paid - Claim Payment Has Been Processed.", S.EXCEPTION),
    "141": ("Incomplete Documentation Received", S.EXCEPTION),
    "142": ("Claim Voided", None),
    # Handed to an agent for the last leg, not to the receiver.
    "143": ("Delivered to Agent", S.IN_TRANSIT),
    # Waiting at a counter for the receiver: not delivered yet.
    "144": ("Delivered to Post Office for Pickup", S.AVAILABLE_FOR_PICKUP),
    "145": ("Delivery Attempted", S.FAILED_ATTEMPT),
    "146": ("Out for Delivery", S.OUT_FOR_DELIVERY),
    "147": ("Seized by Law Enforcement, No Longer in UPS possession", S.EXCEPTION),
    "148": ("Package Information Unavailable", None),
    "149": ("Prohibited Contents, Package Destroyed No Longer in UPS possession", S.EXCEPTION),
    "153": ("Updated Delivery Time", None),
    "154": ("Updated Delivery Date", None),
    "155": ("Delivery Photo", None),
    "156": ("Commercial Inside Release", S.DELIVERED),
    "157": ("Shipment Ready for UPS", S.INFO_RECEIVED),
    "158": ("On the Way", S.IN_TRANSIT),
    "159": ("On the Way", S.IN_TRANSIT),
    "160": ("We Have Your Package", S.IN_TRANSIT),
    "161": ("Delivered to UPS Access Point", S.AVAILABLE_FOR_PICKUP),
    "162": ("Out for Delivery", S.OUT_FOR_DELIVERY),
    "163": ("Package Information Unavailable", None),
    "164": ("On the Way", S.IN_TRANSIT),
    "165": ("On the Way", S.IN_TRANSIT),
    "166": ("Shipment Ready for Roadie", S.INFO_RECEIVED),
    "167": ("Dropped off at UPS Store by Customer", S.IN_TRANSIT),
    "168": ("Dropped off at Retail Location by Customer", S.IN_TRANSIT),
    "169": ("Dropped off at a UPS Access Point by Customer", S.IN_TRANSIT),
}
STATUS_CODE_TEXT: dict[str, str] = {code: text for code, (text, _) in STATUS_CODE_TABLE.items()}
STATUS_CODES: dict[str, Status | None] = {
    code: status for code, (_, status) in STATUS_CODE_TABLE.items()
}

# Two-character activity codes seen in UPS answers, for an answer without a `statusCode`.
ACTIVITY_CODES: dict[str, Status] = {
    "MP": S.INFO_RECEIVED,  # label created, UPS does not have the parcel yet
    "XD": S.IN_TRANSIT,  # pickup scan
    "OR": S.IN_TRANSIT,  # origin scan
    "AR": S.IN_TRANSIT,  # arrival scan
    "DP": S.IN_TRANSIT,  # departure scan
    "OT": S.OUT_FOR_DELIVERY,  # out for delivery today
    "48": S.FAILED_ATTEMPT,  # receiver not available / moved, attempt made
    "WD": S.EXCEPTION,  # weather delay
    "ZP": S.AVAILABLE_FOR_PICKUP,  # at a UPS Access Point, awaiting pickup
    "KB": S.DELIVERED,
    "F4": S.DELIVERED,
    "RS": S.RETURNED_TO_SENDER,
}

STATUS_TYPES: dict[str, Status | None] = {
    "M": S.INFO_RECEIVED,  # billing information received
    "MV": S.EXCEPTION,  # billing information voided
    "P": S.IN_TRANSIT,  # pickup
    "I": S.IN_TRANSIT,
    "O": S.OUT_FOR_DELIVERY,
    "D": S.DELIVERED,
    "X": S.EXCEPTION,
    "RS": S.RETURNED_TO_SENDER,
    "DO": S.IN_TRANSIT,  # delivered to origin CFS (freight)
    "DD": S.IN_TRANSIT,  # delivered to destination CFS (freight)
    "W": S.IN_TRANSIT,  # warehousing (freight)
    "U": S.IN_TRANSIT,  # update (Track Alert)
    "NA": None,  # not available: keep the last status
}


def map_status(
    status_type: str | None, status_code: str | None, activity_code: str | None = None
) -> Status | None:
    """Normalized status for a UPS (type, statusCode, activity code); None keeps the last one.

    The 3-digit code decides when UPS's table has it (an "exception" code sent as an
    in-transit `I` update stays in transit); else the activity code; else the type.
    """
    code = (status_code or "").strip()
    kind = (status_type or "").strip().upper()
    activity = (activity_code or "").strip().upper()
    if code == "013" and kind == "I":
        return S.IN_TRANSIT  # "exception/update" reported as an in-transit update
    if code in STATUS_CODES:
        return STATUS_CODES[code]
    if activity in ACTIVITY_CODES:
        return ACTIVITY_CODES[activity]
    if kind in STATUS_TYPES:
        return STATUS_TYPES[kind]
    if code or kind or activity:
        logger.warning(
            "unknown UPS status: type=%r statusCode=%r code=%r",
            status_type,
            status_code,
            activity_code,
        )
    return None
