"""The engine (torch only; imports nothing else of ``helpers``): names, hooks, capture, edit, extract, store,
layer listing, memory budgets, runtime setup, paths, checksums. Its public functions are at ``helpers.*``.

| module | what |
|---|---|
| ``names`` | layer names and globs -> module names, close-match errors |
| ``hooks`` | all-or-nothing forward hooks (``HookSet``), the one ``StopForward`` |
| ``positions`` | the one ``Positions`` type and how it indexes |
| ``capturing`` | ``capture``: activations, inputs and gradients of named layers |
| ``editing`` | ``edit`` and every edit function (steer, replace, ablate, patch, top-k, masks) |
| ``input_editing`` | ``edit_inputs``: the same edit functions on a layer's input |
| ``extraction`` / ``store`` | ``extract`` to disk; ``ActivationStore`` reads it lazily |
| ``listing`` | ``layers``: names, types, output shapes |
| ``linear_maps`` | ``is_linear`` / ``linear_weight``: ``nn.Linear`` and transformers' ``Conv1D`` read as (out, in) |
| ``budget`` | memory and disk estimates and limits |
| ``runtime`` | ``setup``: device, seeds, CPU threads |
| ``paths`` / ``checksum`` | project folders; one SHA-256 routine and one ``ChecksumError`` |
"""
