# Panoptic FCN R50, Mapillary Vistas, full-image training (supplementary): whole images with the
# shortest side drawn in 1024-2048 (long side <= 4096; Vistas images vary in size, so the name
# gives the largest short side), horizontal flip, SGD lr 0.005 for 8 images per iteration, poly
# 0.9 over 150k iterations. Everything else as the crop-based baseline.
_base_ = [
    '../_base_/models/panoptic-fcn_r50_fpn_mapillary.py',
    '../_base_/datasets/mapillary_panoptic_full.py', '../_base_/schedules/sgd-poly_150k.py',
    '../_base_/default_runtime.py'
]

num_gpus = 8
images_per_gpu = 1  # 8 GPUs x 1 image = 8 images per iteration
lr = 0.005  # for 8 images per iteration

train_dataloader = dict(batch_size=images_per_gpu)
optim_wrapper = dict(optimizer=dict(lr=lr))
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
