"""How `agent_assist.redact` finds personal details in what people say, as speech-to-text writes
it. One module per kind of detail, all reading the same `Reading` of a turn (its tokens and the
words around them that say what a number is), each in one pass with bounded look-around, so a
turn of any length costs linear time:

- `reading`: tokens, the lexicon (lexicon.toml), and the context words near each token;
- `numbers`: numbers typed or read out (cards, phones, ids, accounts, bank details), and codes
  of letters and digits (IBAN, NI numbers, postcodes);
- `dates`: dates of birth;
- `places`: street addresses, PO boxes, postcodes with their suburbs;
- `emails`: typed and spoken email addresses;
- `people`: names people give, and the passwords and answers they read out.
"""
