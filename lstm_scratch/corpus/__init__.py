"""Built-in corpora shipped inside the package (so an installed copy needs nothing else).

tinyshakespeare.txt: 1,115,394 characters of Shakespeare's plays (public domain),
the classic char-rnn corpus.
"""
