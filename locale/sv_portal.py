# ruff: noqa: E501  (a table of translations: long lines read better than split ones)
"""Swedish for the portal: fills locale/sv/LC_MESSAGES/django.po after makemessages.

Run: .venv/bin/python locale/sv_portal.py && msgfmt (or manage.py compilemessages).
"""

from __future__ import annotations

import re
from pathlib import Path

SV = {
    "Overdue": "Förfallen",
    "Open": "Obetald",
    "Paid": "Betald",
    "Void": "Makulerad",
    "Uncollectible": "Osäker fordran",
    "Draft": "Utkast",
    "Processing": "Behandlas",
    "Succeeded": "Genomförd",
    "Failed": "Misslyckad",
    "Refunded": "Återbetald",
    "Partially refunded": "Delvis återbetald",
    "Being confirmed": "Bekräftas",
    "Under review": "Granskas",
    "Amount to pay": "Belopp att betala",
    "Saved card": "Sparat kort",
    "Save this card for later": "Spara kortet till nästa gång",
    "Enter an amount such as 1000.00.": "Ange ett belopp, till exempel 1000,00.",
    "Enter an amount in %(currency)s.": "Ange ett belopp i %(currency)s.",
    "Choose a saved card or enter a new one.": "Välj ett sparat kort eller ange ett nytt.",
    "The card ending in %(last4)s was deleted.": "Kortet som slutar på %(last4)s har tagits bort.",
    "Account": "Konto",
    "Signed in as": "Inloggad som",
    "Customer": "Kund",
    "Two-step sign-in (authenticator apps, passkeys, backup codes) and signed-in sessions": "Tvåstegsinloggning (autentiseringsappar, nycklar, reservkoder) och inloggade sessioner",
    "Add an authenticator app": "Lägg till en autentiseringsapp",
    "Change password": "Byt lösenord",
    "Saved cards": "Sparade kort",
    "Your invoices": "Dina fakturor",
    "Skip to content": "Hoppa till innehållet",
    "Main": "Huvudmeny",
    "Invoices": "Fakturor",
    "Security": "Säkerhet",
    "Sign out": "Logga ut",
    "Tillit secure invoicing": "Tillit säker fakturering",
    "How we protect your payments": "Så skyddar vi dina betalningar",
    "expires": "går ut",
    "Delete the card ending in %(last4)s": "Ta bort kortet som slutar på %(last4)s",
    "Delete": "Ta bort",
    "Deleting a card asks for your second factor again.": "För att ta bort ett kort behöver du bekräfta med din andra faktor igen.",
    "No saved cards.": "Inga sparade kort.",
    "Add a card": "Lägg till ett kort",
    "Invoice %(number)s": "Faktura %(number)s",
    "All invoices": "Alla fakturor",
    "Summary": "Sammanfattning",
    "Issued": "Fakturadatum",
    "Due": "Förfallodatum",
    "Total": "Att betala totalt",
    "Amount due": "Kvar att betala",
    "Pay by card": "Betala med kort",
    "View receipt": "Visa kvitto",
    "Lines": "Rader",
    "Description": "Beskrivning",
    "Quantity": "Antal",
    "Unit price": "À-pris",
    "VAT": "Moms",
    "Net": "Netto",
    "VAT summary": "Momsspecifikation",
    "VAT rate": "Momssats",
    "Taxable amount": "Underlag",
    "Net total": "Summa netto",
    "VAT total": "Summa moms",
    "Pay by bank transfer": "Betala med bankgiro eller banköverföring",
    "OCR reference": "OCR-nummer",
    "Bankgiro": "Bankgiro",
    "Payee": "Mottagare",
    "Always give the OCR reference: it matches your transfer to this invoice automatically.": "Ange alltid OCR-numret: då kopplas din betalning automatiskt till fakturan.",
    "Payment history": "Betalningar",
    "Date": "Datum",
    "Method": "Betalsätt",
    "Amount": "Belopp",
    "Status": "Status",
    "Card": "Kort",
    "Bank transfer": "Banköverföring",
    "No payments yet.": "Inga betalningar ännu.",
    "Show": "Visa",
    "Search by number, OCR reference or line text": "Sök på fakturanummer, OCR-nummer eller radtext",
    "Filter": "Filtrera",
    "Invoice": "Faktura",
    "Pages": "Sidor",
    "Previous": "Föregående",
    "Page %(number)s of %(total)s": "Sida %(number)s av %(total)s",
    "Next": "Nästa",
    "No invoices match.": "Inga fakturor matchar.",
    "Pay invoice %(number)s": "Betala faktura %(number)s",
    "Back to the invoice": "Tillbaka till fakturan",
    "Request": "Begäran",
    "Pay with a saved card": "Betala med ett sparat kort",
    "Pay": "Betala",
    "Pay with a new card": "Betala med ett nytt kort",
    "Card number": "Kortnummer",
    "Expiry (MM/YY)": "Giltigt till (MM/ÅÅ)",
    "Security code": "Säkerhetskod (CVC)",
    "Your card details are encrypted in this browser before they are sent; our web servers "
    "never see them.": "Dina kortuppgifter krypteras i webbläsaren innan de skickas; våra "
    "webbservrar ser dem aldrig.",
    "Paying with a new card needs JavaScript: it encrypts your card details in the browser.": "För att betala med ett nytt kort behövs JavaScript: det krypterar dina kortuppgifter "
    "i webbläsaren.",
    "Payment": "Betalning",
    "Payment for invoice %(number)s": "Betalning av faktura %(number)s",
    "Thank you: your payment went through.": "Tack! Din betalning är genomförd.",
    "The payment did not go through.": "Betalningen gick inte igenom.",
    "The card has insufficient funds.": "Det saknas täckning på kortet.",
    "The card was declined.": "Kortet nekades.",
    "Nothing was charged.": "Inget har dragits.",
    "Card payments are unavailable right now; nothing was charged.": "Kortbetalningar fungerar inte just nu; inget har dragits.",
    "We are confirming this payment with the card network.": "Vi bekräftar betalningen med kortnätverket.",
    "Please do not pay again: this page shows the outcome within a few minutes.": "Betala inte igen: den här sidan visar resultatet inom några minuter.",
    "Pay the amount due": "Betala det som återstår",
    "Receipt for invoice %(number)s": "Kvitto för faktura %(number)s",
    "Paid in full": "Betald i sin helhet",
    "Credited": "Krediterat",
    "Payments": "Betalningar",
    "card": "kort",
    "bank transfer": "banköverföring",
    "refunded": "återbetalt",
    "These facts are read from our live configuration each time you open this page.": "Uppgifterna läses från vår aktuella konfiguration varje gång du öppnar sidan.",
    "Your card details": "Dina kortuppgifter",
    "When you type a card, your browser encrypts it with %(alg)s (%(bits)s-bit key) before "
    "sending it: our web servers and their logs only ever see ciphertext.": "När du anger ett kort krypterar din webbläsare det med %(alg)s (%(bits)s-bitars "
    "nyckel) innan det skickas: våra webbservrar och deras loggar ser bara krypterad text.",
    "We store the card number encrypted with %(alg)s. The security code is never stored.": "Vi lagrar kortnumret krypterat med %(alg)s. Säkerhetskoden sparas aldrig.",
    "The data keys are themselves encrypted (%(alg)s) by master keys kept outside the "
    "database.": "Datanycklarna är i sin tur krypterade (%(alg)s) med huvudnycklar som "
    "förvaras utanför databasen.",
    "A new data key takes over every %(hours)s hours; older keys are retired and destroyed "
    "after your card is re-encrypted.": "En ny datanyckel tar över var %(hours)s:e timme; "
    "äldre nycklar tas ur bruk och förstörs när ditt kort har krypterats om.",
    "The key in use now was created %(created)s.": "Nyckeln som används nu skapades %(created)s.",
    "Pages show only the brand, the last four digits and the expiry of a card. The full "
    "number is decrypted only for the moment of charging it, by a separate service account, "
    "and every such use is logged.": "Sidorna visar bara kortets typ, de fyra sista siffrorna "
    "och giltighetstiden. Hela numret dekrypteras bara i det ögonblick kortet debiteras, av "
    "ett separat tjänstekonto, och varje sådan användning loggas.",
    "Your account": "Ditt konto",
    "Two-step sign-in is on for your account.": "Tvåstegsinloggning är påslagen för ditt konto.",
    "Two-step sign-in is off for your account.": "Tvåstegsinloggning är avstängd för ditt konto.",
    "Turn it on": "Slå på den",
    "Passwords are stored only as %(hasher)s hashes.": "Lösenord lagras bara som %(hasher)s-hashar.",
    "You are signed out after %(minutes)s minutes without activity.": "Du loggas ut efter %(minutes)s minuter utan aktivitet.",
    "An account is locked for a while after %(failures)s failed sign-ins.": "Ett konto spärras en stund efter %(failures)s misslyckade inloggningar.",
    "Deleting a saved card or changing your sign-in methods asks for your second factor "
    "again.": "För att ta bort ett sparat kort eller ändra hur du loggar in behöver du "
    "bekräfta med din andra faktor igen.",
    "Every action leaves a trace": "Varje händelse lämnar spår",
    "Every payment, refund and access to card data is written to an append-only log; each "
    "entry is chained to the previous one with %(chain)s, and the chain is signed with "
    "%(sig)s.": "Varje betalning, återbetalning och åtkomst till kortuppgifter skrivs i en "
    "logg som bara kan fyllas på; varje post kedjas till den föregående med %(chain)s, och "
    "kedjan signeras med %(sig)s.",
    "The log was last signed %(at)s.": "Loggen signerades senast %(at)s.",
    "The log has not been signed yet.": "Loggen har inte signerats ännu.",
    "Each payment is sent with a unique key, so a repeated click or a lost connection can "
    "never charge you twice.": "Varje betalning skickas med en unik nyckel, så ett dubbelklick "
    "eller ett avbrott kan aldrig dra pengar två gånger.",
    # Payment errors (payments/services.py, payments/vault/) shown on the paying pages.
    "an idempotency key of %(min)s to %(max)s characters is required": "en idempotensnyckel på %(min)s till %(max)s tecken krävs",
    "the idempotency key must be printable": "idempotensnyckeln får bara innehålla skrivbara tecken",
    "the amount must be a Money value": "beloppet måste vara ett penningbelopp",
    "%(currency)s is not the invoice's currency (%(invoice_currency)s)": "%(currency)s är inte fakturans valuta (%(invoice_currency)s)",
    "the amount must be more than zero, not %(amount)s": "beloppet måste vara större än noll, inte %(amount)s",
    "no such invoice": "fakturan finns inte",
    "this idempotency key was already used for a different payment request (another invoice, amount or card); use a new key": "den här idempotensnyckeln har redan använts för en annan betalning (en annan faktura, ett annat belopp eller kort); använd en ny nyckel",
    "choose a saved card": "välj ett sparat kort",
    "choose one of your saved cards": "välj ett av dina sparade kort",
    "this card was deleted": "kortet har tagits bort",
    "%(amount)s is more than is left to pay (%(left)s)": "%(amount)s är mer än vad som återstår att betala (%(left)s)",
    "credit note %(number)s takes no payment": "kreditfaktura %(number)s kan inte betalas",
    "invoice %(number)s is already paid": "faktura %(number)s är redan betald",
    "invoice %(number)s is %(status)s; it takes no payment": "faktura %(number)s är %(status)s och kan inte betalas",
    "invoice %(number)s is already paid (or the rest is held by a payment being processed)": "faktura %(number)s är redan betald (eller så är resten reserverad för en betalning som behandlas)",
    "enter the card number": "ange kortnumret",
    "a card number has 12 to 19 digits": "ett kortnummer har 12 till 19 siffror",
    "the card number is not valid (check digit)": "kortnumret är ogiltigt (kontrollsiffran stämmer inte)",
    "the card brand is not accepted": "korttypen tas inte emot",
    "enter the expiry as MM/YY": "ange giltighetstiden som MM/ÅÅ",
    "the expiry month must be 01 to 12": "giltighetsmånaden måste vara 01 till 12",
    "the card has expired": "kortet har gått ut",
    "the expiry year is too far in the future": "giltighetsåret ligger för långt fram i tiden",
    "the security code has %(digits)s digits": "säkerhetskoden har %(digits)s siffror",
    "the encrypted card data is missing or malformed (is JavaScript on?)": "de krypterade kortuppgifterna saknas eller är felaktiga (är JavaScript påslaget?)",
    "the encrypted card data is not base64url": "de krypterade kortuppgifterna är inte base64url",
    "the encrypted card data does not decrypt under its key; reload the page": "de krypterade kortuppgifterna kan inte dekrypteras med sin nyckel; ladda om sidan",
    "the decrypted card data is not the expected JSON": "de dekrypterade kortuppgifterna har inte väntat format (JSON)",
    "unknown card-entry key; reload the page": "okänd nyckel för kortinmatning; ladda om sidan",
    "the card-entry key has expired; reload the page": "nyckeln för kortinmatning har gått ut; ladda om sidan",
    # Risk decisions on the payment page.
    "For your security we stopped this payment after several failed attempts. Nothing was charged. Please try again later or contact us.": "För din säkerhet stoppade vi betalningen efter flera misslyckade försök. Inget har dragits. Försök igen senare eller kontakta oss.",
    "After a security review we could not accept this payment. Nothing was charged.": "Efter en säkerhetsgranskning kunde vi inte godkänna betalningen. Inget har dragits.",
    "Your payment is under review.": "Din betalning granskas.",
    "We check some card payments before charging them. Nothing has been charged yet; the amount is reserved for this payment. This page shows the outcome once the review is done.": "Vi kontrollerar vissa kortbetalningar innan kortet debiteras. Inget har dragits ännu; beloppet är reserverat för den här betalningen. Sidan visar resultatet när granskningen är klar.",
    # The add-card page (payments/views.py).
    "Saved cards for %(name)s": "Sparade kort för %(name)s",
    "To save a card, first protect your account with a second factor:": "För att spara ett kort måste du först skydda ditt konto med en andra faktor:",
    "set up an authenticator app": "lägg till en autentiseringsapp",
    "Save card": "Spara kortet",
    "Saving a card needs JavaScript: it encrypts your card details in the browser.": "För att spara ett kort behövs JavaScript: det krypterar dina kortuppgifter i webbläsaren.",
    "Saved %(card)s.": "%(card)s har sparats.",
    "Deleted %(card)s.": "%(card)s har tagits bort.",
    # Staff-facing (payments operators and fraud analysts in the admin)
    "a whole number from 1 to %(most)s": "ett heltal från 1 till %(most)s",
    "a limit per currency": "en gräns per valuta",
    "%(code)s is not an ISO 4217 currency code (such as SEK)": "%(code)s är ingen valutakod enligt ISO 4217 (som SEK)",
    "the limit for %(currency)s must be more than zero": "gränsen för %(currency)s måste vara större än noll",
    "changing risk thresholds needs the fraud analyst's permission": "att ändra riskgränserna kräver bedrägerianalytikerns behörighet",
    "deciding a risk review needs the fraud analyst's permission": "att avgöra en riskgranskning kräver bedrägerianalytikerns behörighet",
    "decide a risk review": "avgöra en riskgranskning",
    "give the reason for the decision": "ange skälet till beslutet",
    "this payment is not waiting for a risk review": "betalningen väntar inte på någon riskgranskning",
    "the file is empty": "filen är tom",
    "the file is larger than %(limit)s bytes": "filen är större än %(limit)s byte",
    "this bank line is already resolved": "bankraden är redan hanterad",
    "only money in can pay an invoice: a %(kind)s is dismissed with the reason (take a payment back by refunding it)": "bara inbetalningar kan betala en faktura: en rad av typen %(kind)s avfärdas med ett skäl (en betalning tas tillbaka genom återbetalning)",
    "a malformed line cannot be applied": "en felaktig rad kan inte bokas",
    "the line is in %(line)s, the invoice in %(invoice)s": "raden är i %(line)s, fakturan i %(invoice)s",
    "the invoice cannot take it: %(reason)s": "fakturan kan inte ta emot den: %(reason)s",
    "give the reason for dismissing the line": "ange skälet till att raden avfärdas",
    "confirm your second factor again (step-up) to %(action)s": "bekräfta din andra faktor igen (stegvis verifiering) för att %(action)s",
    "refund": "återbetala",
    "refunding needs the payments operator's permission": "återbetalning kräver betalningsoperatörens behörighet",
    "give the reason for the refund": "ange skälet till återbetalningen",
    "the refund must be in %(currency)s": "återbetalningen måste vara i %(currency)s",
    "the refund must be more than zero": "återbetalningen måste vara större än noll",
    "%(amount)s is more than is left to refund (%(left)s)": "%(amount)s är mer än vad som återstår att återbetala (%(left)s)",
}

_ENTRY = re.compile(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', re.MULTILINE)


def _join(block: str) -> str:
    return "".join(
        bytes(line[1:-1], "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
        for line in block.strip().splitlines()
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"\n'


def main() -> None:
    path = Path(__file__).parent / "sv" / "LC_MESSAGES" / "django.po"
    po = path.read_text(encoding="utf-8")
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        msgid = _join(match.group(1))
        if not msgid:
            return match.group(0)
        if msgid not in SV:
            missing.append(msgid)
            return match.group(0)
        return f"msgid {match.group(1)}msgstr {_quote(SV[msgid])}"

    # Every msgid is translated from the table above, so makemessages' guesses (fuzzy
    # flags and the previous msgid they were guessed from) go.
    po = _ENTRY.sub(fill, po).replace("#, fuzzy\n", "").replace("#, fuzzy, ", "#, ")
    po = re.sub(r"^#\| .*\n", "", po, flags=re.MULTILINE)
    po = po.replace('"Language: \\n"', '"Language: sv\\n"')
    path.write_text(po, encoding="utf-8")
    for msgid in missing:
        print("untranslated:", msgid)


if __name__ == "__main__":
    main()
