"""Every trainer of the embedded domain, over one shared loop (``loop.run``: time budget, curve
file, resumable sharded state) and one data source (``data``: renderer batches on any device).

- ``gan``: adversarial StyleGAN2 training on renderer images (the recipe for the generator)
- ``distill``: the older regression of a generator onto the renderer (paired, blurry)
- ``segmenter``: the label-map U-Net
- ``regressor``: the inverse renderer (image -> every renderer parameter, and identity)
"""
