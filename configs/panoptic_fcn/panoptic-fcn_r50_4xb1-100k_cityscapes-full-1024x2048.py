# Panoptic FCN R50, Cityscapes, full-image training (Fig. 1 (a) of the IBS paper: 51.1 PQ_th,
# 85.1 Acc_th): whole 1024x2048 images after a 0.5-2.0 random resize,
# horizontal flip, SGD lr 0.005 for 4 images per iteration, poly 0.9 over 100k iterations
# (supplementary). Everything else as the crop-based baseline.
_base_ = [
    '../_base_/models/panoptic-fcn_r50_fpn.py', '../_base_/datasets/cityscapes_panoptic_full.py',
    '../_base_/schedules/sgd-poly_100k.py', '../_base_/default_runtime.py'
]

num_gpus = 4
images_per_gpu = 1  # 4 GPUs x 1 image = 4 images per iteration
lr = 0.005  # for 4 images per iteration

train_dataloader = dict(batch_size=images_per_gpu)
optim_wrapper = dict(optimizer=dict(lr=lr))
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
