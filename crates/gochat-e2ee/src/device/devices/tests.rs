use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::device::MAX_STATE_BYTES;
use crate::Error;

const NOW: u64 = 1_700_000_000;

fn dev(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn exact(d: &Device) {
    assert_eq!(d.held, d.count_held());
    assert_eq!(d.encode_state().len(), d.state_len());
}

#[test]
fn device_list_state_is_counted_exactly_and_budgeted() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut phone = Device::new("bob@mof.gov.my", NOW, &mut rng);
    let mut ana = Device::new("ana@mof.gov.my/phone", NOW, &mut rng);
    let laptop = Device::new("bob@mof.gov.my/laptop", NOW, &mut rng);
    let v1 = phone.create_master_key(&dev("phone"), NOW, &mut rng).unwrap();
    exact(&phone);
    let (_, v2) = phone.endorse_device(&dev("laptop"), laptop.identity(), NOW).unwrap();
    exact(&phone);
    let _ = ana.process_device_list(v1.as_bytes(), NOW, &mut rng).unwrap();
    let _ = ana.process_device_list(v2.as_bytes(), NOW, &mut rng).unwrap();
    exact(&ana);
    let removal = phone.remove_linked_device(&dev("laptop"), NOW, &mut rng).unwrap();
    exact(&phone);
    // The budget refuses a list that could grow the state, and nothing changes.
    ana.budget = ana.reserved() + ana.held + MAX_DEVICE_LIST_STATE_BYTES - 1;
    let digest = ana.state_digest();
    assert_eq!(ana.process_device_list(removal.device_list.as_bytes(), NOW, &mut rng), Err(Error::StateFull));
    assert_eq!(ana.state_digest(), digest);
    ana.budget = MAX_STATE_BYTES;
    let _ = ana.process_device_list(removal.device_list.as_bytes(), NOW, &mut rng).unwrap();
    exact(&ana);
    // A device whose user id is not canonical cannot hold a list.
    let mut odd = Device::new("Bob", NOW, &mut rng);
    assert_eq!(odd.create_master_key(&dev("phone"), NOW, &mut rng).unwrap_err().code(), ErrorCode::DeviceListMismatch);
    let mut named = Device::new("bob@mof.gov.my/tablet", NOW, &mut rng);
    assert_eq!(
        named.create_master_key(&dev("phone"), NOW, &mut rng).unwrap_err().code(),
        ErrorCode::DeviceListMismatch
    );
    assert!(named.create_master_key(&dev("tablet"), NOW, &mut rng).is_ok());
}
