# Panoptic FCN R50, Mapillary Vistas, full-image training + IBS: IBS needs >= 2 images per GPU,
# so the baseline's 8 images per iteration run as 4 GPUs x 2 images; full images are not paired,
# so the partner is a random other image of the per-GPU batch (docs/method.md).
_base_ = ['./panoptic-fcn_r50_8xb1-150k_mapillary-full-2048.py']

num_gpus = 4
images_per_gpu = 2  # 4 GPUs x 2 images = 8 images per iteration, as the baseline
segment_weight = 3.0  # MODEL.LOSS_WEIGHT.SEGMENT on Vistas (as the base)
ibs_weight = 5.0  # IBS_WEIGHT on Vistas
ibs_partner = 'random'

train_dataloader = dict(batch_size=images_per_gpu)
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
model = dict(
    panoptic_head=dict(
        loss_ibs=dict(
            _delete_=True,  # the base's loss_ibs is None, not a dict to merge into
            type='IBSLoss',
            partner=ibs_partner,
            num_points=None,
            loss_weight=segment_weight * ibs_weight)))
