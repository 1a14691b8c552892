# Panoptic FCN R50, Mapillary Vistas v1.2, crop-based training: the baseline of the IBS paper
# (README row 35.5 PQ). PanopticFCN-IBS
# configs/mapillary-vistas/PanopticFCN-R50-mapillaryvistas.yaml: SGD lr 0.02, weight decay 1e-4,
# poly 0.9 over 150k iterations with 2000 warm-up iterations, 32 crops of 1024x1024 per
# iteration, shortest side 1024-2048 (long side <= 4096), horizontal flip, C = 256, the Vistas
# head settings of the model base (37 things, POS_NUM 3, TENSOR_DIM 400, SEGMENT 3.0).
_base_ = [
    '../_base_/models/panoptic-fcn_r50_fpn_mapillary.py',
    '../_base_/datasets/mapillary_panoptic_crop.py', '../_base_/schedules/sgd-poly_150k.py',
    '../_base_/default_runtime.py'
]

num_gpus = 8
images_per_gpu = 4  # 8 GPUs x 4 images = IMS_PER_BATCH 32
lr = 0.02  # SOLVER.BASE_LR for 32 images

train_dataloader = dict(batch_size=images_per_gpu)
optim_wrapper = dict(optimizer=dict(lr=lr))
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
