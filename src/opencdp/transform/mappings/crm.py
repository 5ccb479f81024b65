"""A Salesforce-style CRM file export: Contact records (field names as Salesforce's)."""

from opencdp.transform.mapping import F, SourceMapping

CUSTOMERS = SourceMapping(
    table="customers",
    provider="crm",
    streams=("contacts",),
    fields={
        "source_id": F("Id"),
        "email": F("Email"),
        "phone": F("MobilePhone", "Phone"),
        "first_name": F("FirstName"),
        "last_name": F("LastName"),
        "birth_date": F("Birthdate"),
        "address_line1": F("MailingStreet"),
        "city": F("MailingCity"),
        "region": F("MailingState"),
        "postcode": F("MailingPostalCode"),
        "country": F("MailingCountry"),
        "external_ids": F(ids={"crm": "Id"}),
        "created_at": F("CreatedDate"),
        "updated_at": F("LastModifiedDate"),
    },
)

MAPPINGS = (CUSTOMERS,)
