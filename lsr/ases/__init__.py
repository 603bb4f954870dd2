"""AS-ES learning (docs/paper.md#as-es): the student writes its own rationale in turns, then its summary.

The mined rationale chain is split into extractive segments (ES, taken from the document) and abstractive ones
(AS, the model's own words); a student learns to produce them in turns, one ES turn then one AS turn, until the
turn that carries the final summary. The package, one concept per module:

- :mod:`.chain`: a mined row as a chain of tagged items; segments, turns and the text the student reads and writes.
- :mod:`.segment`: the two segmentation schemes (by source overlap, by a scorer's token entropy), pure.
- :mod:`.entropy`: the entropy scorer (any causal or seq2seq checkpoint), one model per Ray Data actor.
- :mod:`.stage`: ``lsr segment``'s config and Ray Data pass; :mod:`.report`: the ES/AS split statistics.
- :mod:`.dataset`: the dual (ES model, AS model) and unified training rows; the ``as-es`` objective reads them.
- :mod:`.generate`: iterative generation in turns, bounded by a round limit.
- :mod:`.explain`: the generated rationale located in the document (serving's ``explain: true``).
- :mod:`.evaluation`: AS-ES predictions for ``lsr evaluate`` (summary scored, rationale kept).
- :mod:`.student`: which ``--model`` is an AS-ES student (its training report, or ``ES_DIR+AS_DIR``).
"""
